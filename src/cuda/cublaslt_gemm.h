// GEMMs with fused epilogues through cuBLASLt, for FC layers and 1x1
// stride-1 NHWC convolutions (a GEMM of [N*H*W, C] x [C, K]):
//
//   Y[M,N] = act(X[M,K] * W[N,K]^T + bias[N] (+ residual[M,N]))
//
// X, W, Y and residual are row-major. cuBLASLt is column-major, and a
// row-major [R,C] matrix is the column-major [C,R] matrix, so we compute
// Y^T[N,M] = W * X^T: A = W (column-major K x N, transposed), B = X
// (column-major K x M), D = Y^T (column-major N x M). This "TN" form is the
// one every cuBLASLt kernel family supports, and it puts N on D's rows,
// which is the axis the BIAS epilogue broadcasts along. CUBLASLT_ORDER_ROW
// would avoid the trick but fewer algorithms (and epilogues) accept it.
//
// The residual is cuBLASLt's C with beta = 1; cuBLASLt applies the epilogue
// after adding beta * C, so ReLU sees X*W^T + bias + residual (ResNet's
// relu(conv + shortcut)).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace anvil::cuda {

// Every device pointer passed to Gemm::execute (x, w, bias, residual, y,
// workspace) must be aligned to this many bytes, as cudaMalloc's are:
// cuBLASLt's heuristics assume it when they pick an algorithm. Y and the
// residual only to GemmShape::y_alignment.
inline constexpr std::size_t kGemmAlignment = 256;

struct GemmShape {
  std::int64_t m = 0;  // rows of X and Y (batch, or N*H*W for a 1x1 conv)
  std::int64_t n = 0;  // rows of W, columns of Y (output features)
  std::int64_t k = 0;  // columns of X and W (input features)
  // FP16 storage for X, W, Y, residual and bias with FP32 accumulation; else
  // FP32 everywhere. The bias has Y's type (cuBLASLt's default bias type).
  bool fp16 = false;
  // FP16 only: Y, the residual and the bias in FP32 (X and W stay FP16), so
  // that an FC layer can write a network's FP32 output itself.
  bool float_output = false;
  // The alignment Y (and the residual) is guaranteed, in bytes: a power of
  // two from 16 to kGemmAlignment. Below kGemmAlignment cuBLASLt offers only
  // the algorithms that work at it (a user's output buffer is 16-aligned).
  std::size_t y_alignment = kGemmAlignment;
  // FP32 only: lets cuBLASLt use TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32).
  bool allow_tf32 = false;
  bool has_bias = false;
  bool relu = false;
  bool has_residual = false;
};

// Whether Y, the residual and the bias are FP16 (else FP32).
inline bool half_output(const GemmShape& shape) {
  return shape.fp16 && !shape.float_output;
}

// "m=128 n=1000 k=512 fp16 bias relu", for messages.
std::string to_string(const GemmShape& shape);

// One GEMM problem bound to one cuBLASLt algorithm. Immutable after creation;
// execute() may be called from several threads at once. Copies share the
// problem's descriptors.
class Gemm {
 public:
  // Up to max_candidates algorithms from cuBLASLt's heuristic
  // (cublasLtMatmulAlgoGetHeuristic), best first, each needing at most
  // workspace_limit bytes of workspace. Throws kUnsupported when there is none.
  static std::vector<Gemm> candidates(cublasLtHandle_t handle, const GemmShape& shape,
                                      std::size_t workspace_limit, int max_candidates = 8);

  // The algorithm stored in a plan (identity()), validated for this shape and
  // this cuBLASLt with cublasLtMatmulAlgoCheck. Throws kIncompatible when
  // cuBLASLt rejects it, kInvalidArgument when the text is malformed.
  static Gemm from_identity(cublasLtHandle_t handle, const GemmShape& shape,
                            const std::string& identity);

  // The algorithm as text: cublasLtMatmulAlgo_t's 8 words as 128 hex digits.
  std::string identity() const;
  // Workspace the algorithm needs (at most the candidates' workspace_limit).
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  const GemmShape& shape() const;

  // Enqueues the GEMM on `stream`: no allocation, no synchronization, so it
  // can be captured in a CUDA graph. bias / residual are ignored (may be null)
  // unless the shape has them. workspace_size must be >= workspace_bytes().
  void execute(cublasLtHandle_t handle, cudaStream_t stream, const void* x, const void* w,
               const void* bias, const void* residual, void* y, void* workspace,
               std::size_t workspace_size) const;

  // Average milliseconds of one execute() over `iterations` runs after one
  // warm-up, timed with CUDA events; synchronizes (for the autotuner only).
  float time_ms(cublasLtHandle_t handle, cudaStream_t stream, const void* x, const void* w,
                const void* bias, const void* residual, void* y, void* workspace,
                std::size_t workspace_size, int iterations = 20) const;

  struct Problem;  // the shape and its matrix layouts (cublasLt_gemm.cc)

 private:
  Gemm(std::shared_ptr<const Problem> problem, const cublasLtMatmulAlgo_t& algo,
       std::size_t workspace_bytes)
      : problem_(std::move(problem)), algo_(algo), workspace_bytes_(workspace_bytes) {}

  std::shared_ptr<const Problem> problem_;
  cublasLtMatmulAlgo_t algo_{};
  std::size_t workspace_bytes_ = 0;
};

}  // namespace anvil::cuda
