// cuBLASLt GEMMs (cuda/cublaslt_gemm.h) against the CPU Gemm op: every
// heuristic candidate of FC-like and 1x1-conv-like shapes, FP32 and FP16,
// with bias / ReLU / residual epilogues; plan identities round-trip.
#include "cuda/cublaslt_gemm.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "../unit/op_test_util.h"
#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using cuda::Gemm;
using cuda::GemmShape;
using testing::OpNode;

constexpr std::size_t kWorkspaceLimit = 32 << 20;

std::vector<float> random_values(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v)
    x = dist(rng);
  return v;
}

// Rounds through FP16 so that the CPU reference sees the GPU's inputs.
void round_to_half(std::vector<float>& v) {
  for (float& x : v)
    x = __half2float(__float2half(x));
}

// act(X * W^T + bias + residual) with the CPU Gemm op (transB = 1).
std::vector<float> reference(const GemmShape& s, const std::vector<float>& x,
                             const std::vector<float>& w, const std::vector<float>& bias,
                             const std::vector<float>& residual) {
  OpNode gemm("Gemm", 13, s.has_bias ? 3 : 2);
  gemm.attr("transB", std::int64_t{1});
  const Tensor xt = testing::f32({s.m, s.k}, x);
  const Tensor wt = testing::f32({s.n, s.k}, w);
  const Tensor bt = s.has_bias ? testing::f32({s.n}, bias) : Tensor();
  std::vector<const Tensor*> inputs = {&xt, &wt};
  if (s.has_bias) inputs.push_back(&bt);
  std::vector<float> y = testing::values_of(gemm.run_one(inputs));
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (s.has_residual) y[i] += residual[i];
    if (s.relu) y[i] = std::max(y[i], 0.0f);
  }
  return y;
}

// Host floats <-> device buffers in the shape's storage type, `offset` bytes in.
cuda::DeviceBuffer upload(const std::vector<float>& v, bool fp16, std::size_t offset = 0) {
  cuda::DeviceBuffer buffer(offset + v.size() * (fp16 ? sizeof(__half) : sizeof(float)));
  std::byte* at = static_cast<std::byte*>(buffer.data()) + offset;
  if (fp16) {
    std::vector<__half> h(v.size());
    std::transform(v.begin(), v.end(), h.begin(), [](float f) { return __float2half(f); });
    cuda::copy_to_device(at, h.data(), h.size() * sizeof(__half));
  } else {
    cuda::copy_to_device(at, v.data(), v.size() * sizeof(float));
  }
  return buffer;
}

std::vector<float> download(const cuda::DeviceBuffer& buffer, std::size_t count, bool fp16,
                            std::size_t offset = 0) {
  const std::byte* at = static_cast<const std::byte*>(buffer.data()) + offset;
  std::vector<float> v(count);
  if (fp16) {
    std::vector<__half> h(count);
    ANVIL_GPU_CHECK(cudaMemcpy(h.data(), at, count * sizeof(__half), cudaMemcpyDeviceToHost));
    std::transform(h.begin(), h.end(), v.begin(), [](__half x) { return __half2float(x); });
  } else {
    ANVIL_GPU_CHECK(cudaMemcpy(v.data(), at, count * sizeof(float), cudaMemcpyDeviceToHost));
  }
  return v;
}

// max|got - want| / max|want|, and where the worst element is.
struct Deviation {
  double normalized = 0.0;
  std::size_t worst = 0;
};
Deviation deviation(const std::vector<float>& got, const std::vector<float>& want) {
  double max_want = 0.0, max_diff = -1.0;
  Deviation d;
  for (std::size_t i = 0; i < want.size(); ++i) {
    max_want = std::max(max_want, std::fabs(double{want[i]}));
    const double diff = std::fabs(double{got[i]} - double{want[i]});
    // NaN compares false: treat it as the worst possible element.
    if (!(diff <= max_diff)) {
      max_diff = std::isnan(diff) ? INFINITY : diff;
      d.worst = i;
    }
  }
  d.normalized = max_diff / std::max(max_want, 1e-30);
  return d;
}

// The inputs of one shape on the host (rounded to FP16 where it runs in
// FP16) and on the device, plus the CPU reference.
// Y (and the residual) sit shape.y_alignment bytes into their buffers when
// that is below kGemmAlignment, so that the GEMM sees only that alignment.
struct Problem {
  explicit Problem(const GemmShape& shape) : s(shape) {
    x = random_values(s.m * s.k, 1);
    w = random_values(s.n * s.k, 2);
    // Scaled like trained weights so the sums stay O(1) in FP16.
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.k));
    for (float& v : w)
      v *= scale;
    bias = random_values(s.n, 3);
    residual = random_values(s.m * s.n, 4);
    for (auto* v : {&x, &w})
      if (s.fp16) round_to_half(*v);
    for (auto* v : {&bias, &residual})
      if (fp16_y()) round_to_half(*v);
    want = reference(s, x, w, bias, residual);
    dx = upload(x, s.fp16);
    dw = upload(w, s.fp16);
    dbias = upload(bias, fp16_y());
    dresidual = upload(residual, fp16_y(), y_offset());
    dy = cuda::DeviceBuffer(y_offset() + want.size() * (fp16_y() ? sizeof(__half) : sizeof(float)));
  }

  bool fp16_y() const { return cuda::half_output(s); }
  std::size_t y_offset() const { return s.y_alignment % cuda::kGemmAlignment; }
  void* y() const { return static_cast<std::byte*>(dy.data()) + y_offset(); }
  const void* residual_at() const {
    return static_cast<const std::byte*>(dresidual.data()) + y_offset();
  }

  std::vector<float> run(const Gemm& gemm, const cuda::CublasLtHandle& handle,
                         const cuda::Stream& stream, const cuda::DeviceBuffer& workspace) const {
    ANVIL_GPU_CHECK(cudaMemsetAsync(dy.data(), 0xff, dy.bytes(), stream.get()));  // NaNs
    gemm.execute(handle.get(), stream.get(), dx.data(), dw.data(), dbias.data(), residual_at(), y(),
                 workspace.data(), workspace.bytes());
    stream.synchronize();
    return download(dy, want.size(), fp16_y(), y_offset());
  }

  std::string describe(const std::vector<float>& got) const {
    const Deviation d = deviation(got, want);
    const std::int64_t row = static_cast<std::int64_t>(d.worst) / s.n;
    return cat(cuda::to_string(s), ": normalized error ", d.normalized, ", worst at y[", row, ",",
               static_cast<std::int64_t>(d.worst) - row * s.n, "] got ", got[d.worst], " want ",
               want[d.worst]);
  }

  GemmShape s;
  std::vector<float> x, w, bias, residual, want;
  cuda::DeviceBuffer dx, dw, dbias, dresidual, dy;
};

std::vector<GemmShape> shapes(bool fp16) {
  std::vector<GemmShape> all = {
      {.m = 1, .n = 1000, .k = 512, .has_bias = true},                 // ResNet-18 FC, batch 1
      {.m = 128, .n = 1000, .k = 512, .has_bias = true},               // batch 128
      {.m = 4, .n = 1000, .k = 2048, .has_bias = true},                // ResNet-50 FC
      {.m = 3136, .n = 256, .k = 64, .has_bias = true, .relu = true},  // 1x1 conv 56x56
      {.m = 3136, .n = 256, .k = 64, .has_bias = true, .relu = true, .has_residual = true},
      {.m = 3136, .n = 256, .k = 64, .has_residual = true},         // no bias
      {.m = 33, .n = 17, .k = 40, .has_bias = true, .relu = true},  // odd n
      {.m = 64, .n = 128, .k = 96, .relu = true},                   // ReLU, no bias
  };
  for (GemmShape& s : all)
    s.fp16 = fp16;
  return all;
}

// FP16 X and W, FP32 Y at a user buffer's 16-byte alignment ("gemm_output").
std::vector<GemmShape> float_output_shapes() {
  std::vector<GemmShape> all = {
      {.m = 1, .n = 1000, .k = 512, .has_bias = true},
      {.m = 128, .n = 1000, .k = 512, .has_bias = true},
      {.m = 3136, .n = 256, .k = 64, .has_bias = true, .relu = true, .has_residual = true},
      {.m = 64, .n = 128, .k = 96, .relu = true},
  };
  for (GemmShape& s : all) {
    s.fp16 = true;
    s.float_output = true;
    s.y_alignment = 16;
  }
  return all;
}

void check_every_candidate(const std::vector<GemmShape>& all, double tolerance) {
  const cuda::CublasLtHandle handle;
  const cuda::Stream stream;
  const cuda::DeviceBuffer workspace(kWorkspaceLimit);
  for (const GemmShape& shape : all) {
    SCOPED_TRACE(cuda::to_string(shape));
    const Problem p(shape);
    const std::vector<Gemm> gemms = Gemm::candidates(handle.get(), shape, kWorkspaceLimit);
    ASSERT_FALSE(gemms.empty());
    std::printf("%s: %zu candidates\n", cuda::to_string(shape).c_str(), gemms.size());
    for (const Gemm& gemm : gemms) {
      EXPECT_LE(gemm.workspace_bytes(), kWorkspaceLimit);
      const std::vector<float> got = p.run(gemm, handle, stream, workspace);
      EXPECT_LE(deviation(got, p.want).normalized, tolerance)
          << p.describe(got) << " with algorithm " << gemm.identity();

      const Gemm reloaded = Gemm::from_identity(handle.get(), shape, gemm.identity());
      EXPECT_EQ(reloaded.identity(), gemm.identity());
      EXPECT_EQ(reloaded.workspace_bytes(), gemm.workspace_bytes());
      const std::vector<float> again = p.run(reloaded, handle, stream, workspace);
      EXPECT_EQ(std::memcmp(again.data(), got.data(), got.size() * sizeof(float)), 0)
          << "from_identity output differs from the candidate's: " << p.describe(again);

      const float ms =
          gemm.time_ms(handle.get(), stream.get(), p.dx.data(), p.dw.data(), p.dbias.data(),
                       p.residual_at(), p.y(), workspace.data(), workspace.bytes());
      std::printf("  %s  workspace %8zu  %8.4f ms  error %.2e\n", gemm.identity().c_str(),
                  gemm.workspace_bytes(), ms, deviation(got, p.want).normalized);
    }
  }
}

TEST(CublasLtGemm, Fp32CandidatesMatchTheCpuGemm) {
  ANVIL_REQUIRE_GPU();
  check_every_candidate(shapes(false), 1e-5);
}

TEST(CublasLtGemm, Fp16CandidatesMatchTheCpuGemm) {
  ANVIL_REQUIRE_GPU();
  check_every_candidate(shapes(true), 1e-2);
}

TEST(CublasLtGemm, Fp16WithAnFp32OutputAt16BytesMatchesTheCpuGemm) {
  ANVIL_REQUIRE_GPU();
  // FP32 accumulation and output: only the sums' FP32 rounding is left.
  check_every_candidate(float_output_shapes(), 1e-4);
}

TEST(CublasLtGemm, Tf32IsCloseToTheCpuGemm) {
  ANVIL_REQUIRE_GPU();
  const cuda::CublasLtHandle handle;
  const cuda::Stream stream;
  const cuda::DeviceBuffer workspace(kWorkspaceLimit);
  const GemmShape shape{.m = 128, .n = 1000, .k = 512, .allow_tf32 = true, .has_bias = true};
  const Problem p(shape);
  const Gemm gemm = Gemm::candidates(handle.get(), shape, kWorkspaceLimit).front();
  const std::vector<float> got = p.run(gemm, handle, stream, workspace);
  EXPECT_LE(deviation(got, p.want).normalized, 1e-2) << p.describe(got);
}

TEST(CublasLtGemm, ReplaysFromACudaGraph) {
  ANVIL_REQUIRE_GPU();
  const cuda::CublasLtHandle handle;
  const cuda::Stream stream;
  const cuda::DeviceBuffer workspace(kWorkspaceLimit);
  const GemmShape shape{.m = 3136,
                        .n = 256,
                        .k = 64,
                        .fp16 = true,
                        .has_bias = true,
                        .relu = true,
                        .has_residual = true};
  const Problem p(shape);
  const Gemm gemm = Gemm::candidates(handle.get(), shape, kWorkspaceLimit).front();
  p.run(gemm, handle, stream, workspace);  // cuBLASLt's lazy set-up happens outside the capture
  ANVIL_GPU_CHECK(cudaMemsetAsync(p.dy.data(), 0xff, p.dy.bytes(), stream.get()));
  stream.synchronize();

  cudaGraph_t graph = nullptr;
  ANVIL_GPU_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  gemm.execute(handle.get(), stream.get(), p.dx.data(), p.dw.data(), p.dbias.data(),
               p.dresidual.data(), p.dy.data(), workspace.data(), workspace.bytes());
  ANVIL_GPU_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  cudaGraphExec_t exec = nullptr;
  ANVIL_GPU_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  ANVIL_GPU_CHECK(cudaGraphLaunch(exec, stream.get()));
  stream.synchronize();
  ANVIL_GPU_CHECK(cudaGraphExecDestroy(exec));
  ANVIL_GPU_CHECK(cudaGraphDestroy(graph));
  const std::vector<float> got = download(p.dy, p.want.size(), true);
  EXPECT_LE(deviation(got, p.want).normalized, 1e-2) << p.describe(got);
}

TEST(CublasLtGemm, RejectsBadIdentitiesAndArguments) {
  ANVIL_REQUIRE_GPU();
  const cuda::CublasLtHandle handle;
  const GemmShape shape{.m = 128, .n = 1000, .k = 512, .has_bias = true};
  const auto kind_of = [](auto&& call) -> std::optional<ErrorKind> {
    try {
      call();
    } catch (const Error& e) {
      return e.kind();
    }
    return std::nullopt;
  };
  EXPECT_EQ(kind_of([&] { Gemm::from_identity(handle.get(), shape, "12ab"); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Gemm::from_identity(handle.get(), shape, std::string(128, 'z')); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { Gemm::from_identity(handle.get(), shape, std::string(128, 'f')); }),
            ErrorKind::kIncompatible);
  EXPECT_EQ(kind_of([&] { Gemm::candidates(handle.get(), GemmShape{.m = 0, .n = 4, .k = 4}, 0); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] {
              Gemm::candidates(handle.get(), {.m = 4, .n = 8, .k = 8, .float_output = true},
                               kWorkspaceLimit);
            }),
            ErrorKind::kInvalidArgument)
      << "float_output without fp16";
  EXPECT_EQ(kind_of([&] {
              Gemm::candidates(handle.get(), {.m = 4, .n = 8, .k = 8, .y_alignment = 8},
                               kWorkspaceLimit);
            }),
            ErrorKind::kInvalidArgument)
      << "y_alignment below 16";

  const Gemm gemm = Gemm::candidates(handle.get(), shape, kWorkspaceLimit).front();
  const cuda::DeviceBuffer buffer(1 << 20);
  void* p = buffer.data();
  // A bias GEMM without a bias pointer, and a misaligned x.
  EXPECT_EQ(
      kind_of([&] { gemm.execute(handle.get(), nullptr, p, p, nullptr, nullptr, p, p, 1 << 20); }),
      ErrorKind::kInvalidArgument);
  // A y only 16-byte aligned, where the shape promised 256.
  EXPECT_EQ(kind_of([&] {
              gemm.execute(handle.get(), nullptr, p, p, p, nullptr, static_cast<char*>(p) + 16, p,
                           1 << 20);
            }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] {
              gemm.execute(handle.get(), nullptr, static_cast<char*>(p) + 4, p, p, nullptr, p, p,
                           1 << 20);
            }),
            ErrorKind::kInvalidArgument);
  if (gemm.workspace_bytes() > 0) {
    EXPECT_EQ(kind_of([&] {
                gemm.execute(handle.get(), nullptr, p, p, p, nullptr, p, p,
                             gemm.workspace_bytes() - 1);
              }),
              ErrorKind::kInvalidArgument);
  }
}

}  // namespace
}  // namespace anvil
