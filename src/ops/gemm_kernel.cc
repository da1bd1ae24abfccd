// Blocking follows the BLIS/GotoBLAS scheme: a kKc-deep slice of B is packed
// into kNr-wide column panels (kept in L2/L3), a kMc x kKc block of A into
// kMr-high row panels (kept in L1/L2), and a micro-kernel multiplies one A
// panel by one B panel into a kMr x kNr register tile. Packing makes every
// micro-kernel load contiguous and turns transposes and strides into a
// packing detail, and zero-padding the panels lets the micro-kernel run
// without edge cases.
#include "ops/gemm_kernel.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "anvil/error.h"

namespace anvil::ops {
namespace {

// 6 x 8 accumulators take 12 of the 16 vector registers of x86-64 with SSE2
// (6 with AVX2), leaving room for the B row and the broadcast A value.
constexpr std::int64_t kMr = 6;
constexpr std::int64_t kNr = 8;
constexpr std::int64_t kKc = 256;
constexpr std::int64_t kMc = 16 * kMr;
constexpr std::int64_t kNc = 256 * kNr;

std::int64_t round_up(std::int64_t n, std::int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Packs alpha * a[i0 : i0 + mc, p0 : p0 + kc] as kMr-row panels, each stored
// column after column (kMr consecutive values per k), zero-padded to kMr rows.
void pack_a(const ConstMatrix& a, std::int64_t i0, std::int64_t mc, std::int64_t p0,
            std::int64_t kc, float alpha, float* out) {
  for (std::int64_t ir = 0; ir < mc; ir += kMr) {
    const std::int64_t rows = std::min(kMr, mc - ir);
    const float* src = a.data + (i0 + ir) * a.row_stride + p0 * a.col_stride;
    for (std::int64_t p = 0; p < kc; ++p) {
      const float* col = src + p * a.col_stride;
      for (std::int64_t r = 0; r < rows; ++r)
        out[r] = alpha * col[r * a.row_stride];
      for (std::int64_t r = rows; r < kMr; ++r)
        out[r] = 0.0f;
      out += kMr;
    }
  }
}

// Packs b[p0 : p0 + kc, j0 : j0 + nc] as kNr-column panels, each stored row
// after row (kNr consecutive values per k), zero-padded to kNr columns.
void pack_b(const ConstMatrix& b, std::int64_t p0, std::int64_t kc, std::int64_t j0,
            std::int64_t nc, float* out) {
  for (std::int64_t jr = 0; jr < nc; jr += kNr) {
    const std::int64_t cols = std::min(kNr, nc - jr);
    const float* src = b.data + p0 * b.row_stride + (j0 + jr) * b.col_stride;
    for (std::int64_t p = 0; p < kc; ++p) {
      const float* row = src + p * b.row_stride;
      if (b.col_stride == 1) {
        std::copy(row, row + cols, out);
      } else {
        for (std::int64_t c = 0; c < cols; ++c)
          out[c] = row[c * b.col_stride];
      }
      std::fill(out + cols, out + kNr, 0.0f);
      out += kNr;
    }
  }
}

// Eight floats: one AVX register, or two SSE registers where AVX is absent.
// GCC/Clang vector extensions keep the kMr accumulator rows in registers
// (plain arrays of floats get spilled to the stack by GCC at -O2).
using Row = float __attribute__((vector_size(kNr * sizeof(float))));

// tile = a_panel * b_panel over kc steps. On x86-64 builds without AVX2 the
// loader picks an AVX2/FMA clone on CPUs that have it (3x the throughput).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__AVX2__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void micro_kernel(std::int64_t kc, const float* __restrict a, const float* __restrict b,
                  float* __restrict tile) {
  static_assert(kMr == 6, "the accumulators below are unrolled for 6 rows");
  Row acc0 = {}, acc1 = {}, acc2 = {}, acc3 = {}, acc4 = {}, acc5 = {};
  for (std::int64_t p = 0; p < kc; ++p) {
    Row bp;
    std::memcpy(&bp, b, sizeof(bp));
    acc0 += a[0] * bp;
    acc1 += a[1] * bp;
    acc2 += a[2] * bp;
    acc3 += a[3] * bp;
    acc4 += a[4] * bp;
    acc5 += a[5] * bp;
    a += kMr;
    b += kNr;
  }
  std::memcpy(tile + 0 * kNr, &acc0, sizeof(Row));
  std::memcpy(tile + 1 * kNr, &acc1, sizeof(Row));
  std::memcpy(tile + 2 * kNr, &acc2, sizeof(Row));
  std::memcpy(tile + 3 * kNr, &acc3, sizeof(Row));
  std::memcpy(tile + 4 * kNr, &acc4, sizeof(Row));
  std::memcpy(tile + 5 * kNr, &acc5, sizeof(Row));
}

// Writes the valid rows x cols corner of a tile into c, adding to it when asked.
void store_tile(const float* tile, std::int64_t rows, std::int64_t cols, float* c, std::int64_t ldc,
                bool accumulate) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* src = tile + i * kNr;
    float* dst = c + i * ldc;
    if (accumulate) {
      for (std::int64_t j = 0; j < cols; ++j)
        dst[j] += src[j];
    } else {
      for (std::int64_t j = 0; j < cols; ++j)
        dst[j] = src[j];
    }
  }
}

// c block (mc x nc at i0, j0) (+)= packed A block * packed B block.
void multiply_packed(const float* a_packed, const float* b_packed, std::int64_t mc, std::int64_t nc,
                     std::int64_t kc, const MutableMatrix& c, std::int64_t i0, std::int64_t j0,
                     bool accumulate) {
  float tile[kMr * kNr];
  for (std::int64_t jr = 0; jr < nc; jr += kNr) {
    const std::int64_t cols = std::min(kNr, nc - jr);
    for (std::int64_t ir = 0; ir < mc; ir += kMr) {
      const std::int64_t rows = std::min(kMr, mc - ir);
      micro_kernel(kc, a_packed + ir * kc, b_packed + jr * kc, tile);
      store_tile(tile, rows, cols, c.data + (i0 + ir) * c.row_stride + j0 + jr, c.row_stride,
                 accumulate);
    }
  }
}

}  // namespace

void gemm(const ConstMatrix& a, const ConstMatrix& b, const MutableMatrix& c, float alpha,
          bool accumulate) {
  ANVIL_CHECK(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows);
  const std::int64_t m = c.rows, n = c.cols, k = a.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (std::int64_t i = 0; i < m; ++i)
        std::fill_n(c.data + i * c.row_stride, n, 0.0f);
    return;
  }
  std::vector<float> a_packed(
      static_cast<std::size_t>(round_up(std::min(m, kMc), kMr) * std::min(k, kKc)));
  std::vector<float> b_packed(
      static_cast<std::size_t>(round_up(std::min(n, kNc), kNr) * std::min(k, kKc)));
  for (std::int64_t j0 = 0; j0 < n; j0 += kNc) {
    const std::int64_t nc = std::min(kNc, n - j0);
    for (std::int64_t p0 = 0; p0 < k; p0 += kKc) {
      const std::int64_t kc = std::min(kKc, k - p0);
      pack_b(b, p0, kc, j0, nc, b_packed.data());
      // Later slices of k add to what the first one wrote.
      const bool add = accumulate || p0 > 0;
      for (std::int64_t i0 = 0; i0 < m; i0 += kMc) {
        const std::int64_t mc = std::min(kMc, m - i0);
        pack_a(a, i0, mc, p0, kc, alpha, a_packed.data());
        multiply_packed(a_packed.data(), b_packed.data(), mc, nc, kc, c, i0, j0, add);
      }
    }
  }
}

}  // namespace anvil::ops
