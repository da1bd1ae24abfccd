// One block per row. The softmax's maximum and sum are block reductions; the
// top-k is k rounds of a block-wide maximum over 64-bit keys (the score's
// bits made to sort as unsigned, then the complemented index), each round
// taking the largest key below the previous round's. Keys are unique (they
// hold the index), so no element needs marking as taken, and comparing keys
// gives the host's order exactly: larger score, then lower index, NaN last.
// Scores are recomputed from x in every round rather than stored: for a
// classifier row (a few thousand classes, k <= 32) the reads stay in L1/L2
// and the kernel needs no dynamic shared memory whatever the row length.
#include <cmath>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/topk.h"

namespace anvil::cuda::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr long long kMaxRowsPerGrid = 1LL << 20;

struct MaxFloat {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumFloat {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxInt {
  __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};
struct MaxKey {
  __device__ unsigned long long operator()(unsigned long long a, unsigned long long b) const {
    return a > b ? a : b;
  }
};

// The block-wide reduction of every thread's `v`, returned to every thread.
// `shared` holds kWarps + 1 values. The warps' partial results are combined
// by one thread in a fixed order, so sums are deterministic; the barrier at
// the end lets the next reduction reuse `shared`.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T* shared) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  if (threadIdx.x % kWarp == 0) shared[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    T total = shared[0];
    for (int w = 1; w < kWarps; ++w)
      total = op(total, shared[w]);
    shared[kWarps] = total;
  }
  __syncthreads();
  const T result = shared[kWarps];
  __syncthreads();
  return result;
}

// Orders scores as unsigned integers: larger float, larger key; NaN lowest
// (0); -0 and +0 equal (the host compares them as equal, so the index decides).
__device__ __forceinline__ unsigned long long score_key(float score, long long index) {
  unsigned bits = 0u;
  if (!isnan(score)) {
    const unsigned raw = score == 0.0f ? 0u : __float_as_uint(score);
    bits = (raw & 0x80000000u) ? ~raw : (raw | 0x80000000u);
  }
  return (static_cast<unsigned long long>(bits) << 32) |
         (0xffffffffull - static_cast<unsigned long long>(index));
}

__device__ __forceinline__ long long key_index(unsigned long long key) {
  return static_cast<long long>(0xffffffffull - (key & 0xffffffffull));
}

struct RowSoftmax {
  bool on = false;
  float max = 0.0f;
  float scale = 1.0f;
  __device__ float operator()(float x) const { return on ? expf(x - max) * scale : x; }
};

__global__ void top_k_rows_kernel(const float* __restrict__ x, long long rows, long long cols,
                                  int k, bool softmax, int* __restrict__ indices,
                                  float* __restrict__ scores) {
  __shared__ float shared_f[kWarps + 1];
  __shared__ int shared_i[kWarps + 1];
  __shared__ unsigned long long shared_key[kWarps + 1];
  const long long tid = threadIdx.x;
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* in = x + r * cols;
    int* out_index = indices + r * k;
    float* out_score = scores + r * k;
    RowSoftmax score{softmax, 0.0f, 1.0f};
    if (softmax) {
      float max = -INFINITY;
      int nan = 0;
      for (long long c = tid; c < cols; c += kThreads) {
        const float v = in[c];
        nan |= isnan(v) ? 1 : 0;
        max = fmaxf(max, v);
      }
      max = block_reduce(max, MaxFloat{}, shared_f);
      nan = block_reduce(nan, MaxInt{}, shared_i);
      if (nan != 0 || isinf(max)) {
        // No defined softmax: every score is NaN, so the order is the index's.
        for (long long j = tid; j < k; j += kThreads) {
          out_index[j] = static_cast<int>(j);
          out_score[j] = __int_as_float(0x7fc00000);
        }
        continue;  // uniform across the block: no barrier is skipped by some threads only
      }
      float sum = 0.0f;
      for (long long c = tid; c < cols; c += kThreads)
        sum += expf(in[c] - max);
      sum = block_reduce(sum, SumFloat{}, shared_f);
      score.max = max;
      score.scale = 1.0f / sum;
    }
    unsigned long long below = ~0ull;  // every key is less
    for (int j = 0; j < k; ++j) {
      unsigned long long best = 0ull;  // no real key is 0: the index part never is
      for (long long c = tid; c < cols; c += kThreads) {
        const unsigned long long key = score_key(score(in[c]), c);
        if (key < below && key > best) best = key;
      }
      best = block_reduce(best, MaxKey{}, shared_key);
      if (tid == 0) {
        const long long c = key_index(best);
        out_index[j] = static_cast<int>(c);
        out_score[j] = score(in[c]);
      }
      below = best;
    }
  }
}

}  // namespace

void top_k_rows(const float* x, std::int64_t rows, std::int64_t cols, int k, bool softmax,
                std::int32_t* indices, float* scores, cudaStream_t stream) {
  if (rows < 0 || cols < 1 || cols > 0x7fffffffLL)
    fail(ErrorKind::kInvalidArgument, "top_k_rows: bad shape rows=", rows, " cols=", cols);
  if (k < 1 || k > kMaxTopK || k > cols)
    fail(ErrorKind::kInvalidArgument, "top_k_rows: k=", k, " must be 1..min(", kMaxTopK,
         ", cols=", cols, ")");
  if (rows == 0) return;
  if (x == nullptr || indices == nullptr || scores == nullptr)
    fail(ErrorKind::kInvalidArgument, "top_k_rows: null ",
         x == nullptr ? "input" : (indices == nullptr ? "indices" : "scores"));
  const auto grid = static_cast<unsigned>(rows < kMaxRowsPerGrid ? rows : kMaxRowsPerGrid);
  top_k_rows_kernel<<<grid, kThreads, 0, stream>>>(x, rows, cols, k, softmax, indices, scores);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
