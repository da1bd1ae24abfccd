#include "cuda/cublaslt_gemm.h"

#include <cinttypes>
#include <cstdio>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"

namespace anvil::cuda {

namespace {

struct LayoutRelease {
  void operator()(cublasLtMatrixLayout_t layout) const { cublasLtMatrixLayoutDestroy(layout); }
};
struct PreferenceRelease {
  void operator()(cublasLtMatmulPreference_t pref) const { cublasLtMatmulPreferenceDestroy(pref); }
};
using Layout = Owned<cublasLtMatrixLayout_t, LayoutRelease>;
using Preference = Owned<cublasLtMatmulPreference_t, PreferenceRelease>;

// X and W.
cudaDataType_t storage_type(const GemmShape& shape) {
  return shape.fp16 ? CUDA_R_16F : CUDA_R_32F;
}

// Y, the residual and the bias.
cudaDataType_t output_type(const GemmShape& shape) {
  return half_output(shape) ? CUDA_R_16F : CUDA_R_32F;
}

// Column-major rows x cols with leading dimension ld (elements).
Layout make_layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  cublasLtMatrixLayout_t layout = nullptr;
  ANVIL_GPU_CHECK(cublasLtMatrixLayoutCreate(&layout, type, static_cast<std::uint64_t>(rows),
                                             static_cast<std::uint64_t>(cols), ld));
  return Layout(layout);
}

template <typename T>
void set_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                   const T& value) {
  ANVIL_GPU_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
}

cublasLtEpilogue_t epilogue(const GemmShape& shape) {
  if (shape.has_bias) return shape.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  return shape.relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT;
}

// The matmul descriptor lives in caller-owned storage (cublasLtMatmulDescInit
// allocates nothing) and is rebuilt per execute(): the bias pointer is one of
// its attributes, and a per-call descriptor keeps execute() const,
// allocation-free and safe to call from several threads. Not copyable: the
// library owns the layout of the opaque bytes.
class MatmulDesc {
 public:
  MatmulDesc(const GemmShape& shape, const void* bias) {
    const cublasComputeType_t compute =
        !shape.fp16 && shape.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    ANVIL_GPU_CHECK(cublasLtMatmulDescInit(get(), compute, CUDA_R_32F));
    // A = W is column-major K x N: transposed it is the N x K factor.
    set_attribute(get(), CUBLASLT_MATMUL_DESC_TRANSA, static_cast<std::int32_t>(CUBLAS_OP_T));
    set_attribute(get(), CUBLASLT_MATMUL_DESC_TRANSB, static_cast<std::int32_t>(CUBLAS_OP_N));
    set_attribute(get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                  static_cast<std::uint32_t>(epilogue(shape)));
    if (!shape.has_bias) return;
    // cuBLASLt wants the bias in D's type for FP16/FP32 outputs (the only
    // exceptions are IMMA and FP8 kernels); we say so explicitly.
    set_attribute(get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                  static_cast<std::int32_t>(output_type(shape)));
    if (bias != nullptr) set_attribute(get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  }
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;

  cublasLtMatmulDesc_t get() { return &opaque_; }

 private:
  cublasLtMatmulDescOpaque_t opaque_{};
};

constexpr int kIdentityWords = 8;
constexpr std::size_t kHexPerWord = 16;
static_assert(sizeof(cublasLtMatmulAlgo_t) == kIdentityWords * sizeof(std::uint64_t));

cublasLtMatmulAlgo_t parse_identity(const std::string& identity) {
  if (identity.size() != kIdentityWords * kHexPerWord ||
      identity.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    fail(ErrorKind::kInvalidArgument, "malformed cuBLASLt algorithm identity '", identity,
         "': expected ", kIdentityWords * kHexPerWord, " hex digits");
  cublasLtMatmulAlgo_t algo{};
  for (int i = 0; i < kIdentityWords; ++i)
    algo.data[i] = std::stoull(identity.substr(i * kHexPerWord, kHexPerWord), nullptr, 16);
  return algo;
}

void check_pointer(const void* p, const char* what, const GemmShape& shape,
                   std::size_t alignment = kGemmAlignment) {
  if (p == nullptr) fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape), ": null ", what);
  if (reinterpret_cast<std::uintptr_t>(p) % alignment != 0)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape), ": ", what, " pointer ", p,
         " is not aligned to ", alignment, " bytes");
}

}  // namespace

// Y^T = W * X^T in cuBLASLt's column-major terms (see the header); C, the
// residual, has D's layout.
struct Gemm::Problem {
  explicit Problem(const GemmShape& s)
      : shape(s),
        a(make_layout(storage_type(s), s.k, s.n, s.k)),
        b(make_layout(storage_type(s), s.k, s.m, s.k)),
        d(make_layout(output_type(s), s.n, s.m, s.n)) {}

  GemmShape shape;
  Layout a;  // W
  Layout b;  // X
  Layout d;  // Y, and the residual
};

namespace {

std::shared_ptr<const Gemm::Problem> make_problem(const GemmShape& shape) {
  if (shape.m <= 0 || shape.n <= 0 || shape.k <= 0)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape), ": every extent must be positive");
  if (shape.float_output && !shape.fp16)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape),
         ": float_output is for FP16 inputs (an FP32 GEMM's output is FP32 already)");
  const std::size_t a = shape.y_alignment;
  if (a < 16 || a > kGemmAlignment || (a & (a - 1)) != 0)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape), ": y_alignment ", a,
         " must be a power of two from 16 to ", kGemmAlignment);
  return std::make_shared<const Gemm::Problem>(shape);
}

}  // namespace

std::string to_string(const GemmShape& shape) {
  return cat("m=", shape.m, " n=", shape.n, " k=", shape.k, shape.fp16 ? " fp16" : " fp32",
             shape.float_output ? " fp32-out" : "", shape.allow_tf32 && !shape.fp16 ? " tf32" : "",
             shape.has_bias ? " bias" : "", shape.relu ? " relu" : "",
             shape.has_residual ? " residual" : "",
             shape.y_alignment != kGemmAlignment ? cat(" y-aligned ", shape.y_alignment) : "");
}

std::vector<Gemm> Gemm::candidates(cublasLtHandle_t handle, const GemmShape& shape,
                                   std::size_t workspace_limit, int max_candidates) {
  if (max_candidates <= 0)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(shape), ": max_candidates must be > 0");
  auto problem = make_problem(shape);
  MatmulDesc desc(shape, nullptr);
  cublasLtMatmulPreference_t raw_pref = nullptr;
  ANVIL_GPU_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
  const Preference pref(raw_pref);
  const std::uint64_t limit = workspace_limit;
  ANVIL_GPU_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit, sizeof(limit)));
  const std::uint32_t y_alignment = static_cast<std::uint32_t>(shape.y_alignment);
  for (const cublasLtMatmulPreferenceAttributes_t which :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    ANVIL_GPU_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), which, &y_alignment, sizeof(y_alignment)));

  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(max_candidates));
  int returned = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, desc.get(), problem->a.get(), problem->b.get(), problem->d.get(), problem->d.get(),
      pref.get(), max_candidates, results.data(), &returned);
  // NOT_SUPPORTED is cuBLASLt's "no algorithm fits", not a failure.
  if (status != CUBLAS_STATUS_NOT_SUPPORTED) ANVIL_GPU_CHECK(status);

  std::vector<Gemm> gemms;
  for (int i = 0; status == CUBLAS_STATUS_SUCCESS && i < returned; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS)
      gemms.push_back(Gemm(problem, results[i].algo, results[i].workspaceSize));
  if (gemms.empty())
    fail(ErrorKind::kUnsupported, "cuBLASLt has no algorithm for GEMM ", to_string(shape),
         " within ", workspace_limit, " bytes of workspace");
  return gemms;
}

Gemm Gemm::from_identity(cublasLtHandle_t handle, const GemmShape& shape,
                         const std::string& identity) {
  const cublasLtMatmulAlgo_t algo = parse_identity(identity);
  auto problem = make_problem(shape);
  MatmulDesc desc(shape, nullptr);
  cublasLtMatmulHeuristicResult_t result{};
  const cublasStatus_t status =
      cublasLtMatmulAlgoCheck(handle, desc.get(), problem->a.get(), problem->b.get(),
                              problem->d.get(), problem->d.get(), &algo, &result);
  if (status != CUBLAS_STATUS_SUCCESS || result.state != CUBLAS_STATUS_SUCCESS) {
    const cublasStatus_t bad = status != CUBLAS_STATUS_SUCCESS ? status : result.state;
    fail(ErrorKind::kIncompatible, "cuBLASLt rejects the stored GEMM algorithm ", identity, " for ",
         to_string(shape), ": ", cublasLtGetStatusName(bad),
         "; rebuild the plan with this GPU and cuBLASLt");
  }
  return Gemm(std::move(problem), algo, result.workspaceSize);
}

std::string Gemm::identity() const {
  std::string text;
  char word[kHexPerWord + 1];
  for (const std::uint64_t value : algo_.data) {
    std::snprintf(word, sizeof(word), "%016" PRIx64, value);
    text += word;
  }
  return text;
}

const GemmShape& Gemm::shape() const {
  return problem_->shape;
}

void Gemm::execute(cublasLtHandle_t handle, cudaStream_t stream, const void* x, const void* w,
                   const void* bias, const void* residual, void* y, void* workspace,
                   std::size_t workspace_size) const {
  const GemmShape& s = problem_->shape;
  check_pointer(x, "x", s);
  check_pointer(w, "w", s);
  check_pointer(y, "y", s, s.y_alignment);
  if (s.has_bias) check_pointer(bias, "bias", s);
  if (s.has_residual) check_pointer(residual, "residual", s, s.y_alignment);
  if (workspace_size < workspace_bytes_)
    fail(ErrorKind::kInvalidArgument, "GEMM ", to_string(s), ": workspace of ", workspace_size,
         " bytes, the algorithm needs ", workspace_bytes_);
  if (workspace_size > 0) check_pointer(workspace, "workspace", s);

  MatmulDesc desc(s, bias);
  const float alpha = 1.0f;
  const float beta = s.has_residual ? 1.0f : 0.0f;
  // With beta = 0 cuBLASLt never reads C, but it still wants a valid pointer.
  const void* c = s.has_residual ? residual : y;
  ANVIL_GPU_CHECK(cublasLtMatmul(handle, desc.get(), &alpha, w, problem_->a.get(), x,
                                 problem_->b.get(), &beta, c, problem_->d.get(), y,
                                 problem_->d.get(), &algo_, workspace, workspace_size, stream));
}

float Gemm::time_ms(cublasLtHandle_t handle, cudaStream_t stream, const void* x, const void* w,
                    const void* bias, const void* residual, void* y, void* workspace,
                    std::size_t workspace_size, int iterations) const {
  if (iterations <= 0) fail(ErrorKind::kInvalidArgument, "time_ms: iterations must be > 0");
  execute(handle, stream, x, w, bias, residual, y, workspace, workspace_size);
  const Event start, end;
  start.record(stream);
  for (int i = 0; i < iterations; ++i)
    execute(handle, stream, x, w, bias, residual, y, workspace, workspace_size);
  end.record(stream);
  end.synchronize();
  return Event::elapsed_ms(start, end) / static_cast<float>(iterations);
}

}  // namespace anvil::cuda
