// The single-precision matrix product shared by Conv (after im2col), Gemm and
// MatMul: a cache-blocked, packed GEMM whose register-tiled inner loops the
// compiler vectorizes. One thread; no global state.
#pragma once

#include <cstdint>

namespace anvil::ops {

// A read-only strided matrix: element (i, j) is data[i * row_stride + j * col_stride].
// A transposed row-major matrix is the same memory with the strides swapped.
struct ConstMatrix {
  const float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;
  std::int64_t col_stride = 1;

  // A dense row-major rows x cols matrix.
  static ConstMatrix row_major(const float* data, std::int64_t rows, std::int64_t cols) {
    return {data, rows, cols, cols, 1};
  }
  // The same memory read as the transpose.
  ConstMatrix transposed() const { return {data, cols, rows, col_stride, row_stride}; }
};

// A writable matrix with unit column stride (rows may be padded: row_stride >= cols).
struct MutableMatrix {
  float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;

  static MutableMatrix row_major(float* data, std::int64_t rows, std::int64_t cols) {
    return {data, rows, cols, cols};
  }
};

// c = alpha * a * b, plus the previous contents of c when `accumulate` (which
// is how callers add a bias or beta * C: they fill c first).
// Requires a.rows == c.rows, b.cols == c.cols and a.cols == b.rows.
void gemm(const ConstMatrix& a, const ConstMatrix& b, const MutableMatrix& c, float alpha,
          bool accumulate);

}  // namespace anvil::ops
