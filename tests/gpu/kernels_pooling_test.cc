// The pooling kernels (src/cuda/kernels/pooling.h) against the CPU reference
// ops run in NCHW: NCHW -> padded NHWC -> pool -> NCHW, compared element by
// element (FP32 within 1e-6, FP16 within 1e-2 of the largest output).
#include <cuda_fp16.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>

#include "../unit/op_test_util.h"
#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/pooling.h"
#include "cuda/kernels/reformat.h"
#include "gpu_test.h"
#include "kernels_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::ImageShape;
using cuda::kernels::StorageType;
using testing::random_tensor;

struct PoolCase {
  std::string op;  // "MaxPool" or "AveragePool"
  std::int64_t n, c, h, w, c_pad;
  std::vector<std::int64_t> kernel, strides, pads, dilations;  // ONNX attribute order
  int ceil_mode = 0;
  int count_include_pad = 0;
};

std::string describe(const PoolCase& p) {
  auto list = [](const std::vector<std::int64_t>& v) {
    std::string s;
    for (std::int64_t e : v)
      s += (s.empty() ? "" : ",") + std::to_string(e);
    return "[" + s + "]";
  };
  return cat(p.op, " x=[", p.n, ",", p.c, ",", p.h, ",", p.w, "] c_pad=", p.c_pad,
             " kernel=", list(p.kernel), " strides=", list(p.strides), " pads=", list(p.pads),
             " dilations=", list(p.dilations), " ceil_mode=", p.ceil_mode,
             " count_include_pad=", p.count_include_pad);
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build). The StorageType beside
// it prints by name (kernels_test_util.h).
void PrintTo(const PoolCase& p, std::ostream* os) {
  auto list = [os](const char* tag, const std::vector<std::int64_t>& v) {
    *os << tag;
    for (std::size_t i = 0; i < v.size(); ++i)
      *os << (i == 0 ? "" : "x") << v[i];
  };
  *os << p.op << "_" << p.n << "x" << p.c << "x" << p.h << "x" << p.w << "_cpad" << p.c_pad;
  list("_k", p.kernel);
  list("_s", p.strides);
  list("_p", p.pads);
  if (!p.dilations.empty()) list("_d", p.dilations);
  *os << (p.ceil_mode != 0 ? "_ceil" : "") << (p.count_include_pad != 0 ? "_incpad" : "");
}

Tensor cpu_pool(const PoolCase& p, const Tensor& x) {
  testing::OpNode node(p.op, p.dilations.empty() ? 17 : 19, 1);
  node.attr("kernel_shape", p.kernel).attr("strides", p.strides).attr("pads", p.pads);
  node.attr("ceil_mode", std::int64_t{p.ceil_mode});
  if (!p.dilations.empty()) node.attr("dilations", p.dilations);
  if (p.op == "AveragePool") node.attr("count_include_pad", std::int64_t{p.count_include_pad});
  return node.run_one(x);
}

// The GPU window for the CPU result's output size (what the builder gets
// from shape inference, where ceil_mode is resolved).
cuda::kernels::Pool2d gpu_window(const PoolCase& p, const Tensor& want) {
  const std::vector<std::int64_t> d =
      p.dilations.empty() ? std::vector<std::int64_t>{1, 1} : p.dilations;
  auto i = [](std::int64_t v) { return static_cast<int>(v); };
  return {.n = p.n,
          .c = p.c_pad,
          .in_h = p.h,
          .in_w = p.w,
          .out_h = want.extents()[2],
          .out_w = want.extents()[3],
          .kernel_h = i(p.kernel[0]),
          .kernel_w = i(p.kernel[1]),
          .stride_h = i(p.strides[0]),
          .stride_w = i(p.strides[1]),
          .pad_top = i(p.pads[0]),
          .pad_left = i(p.pads[1]),
          .pad_bottom = i(p.pads[2]),
          .pad_right = i(p.pads[3]),
          .dilation_h = i(d[0]),
          .dilation_w = i(d[1]),
          .count_include_pad = p.count_include_pad == 1};
}

class Pooling : public ::testing::TestWithParam<std::tuple<PoolCase, StorageType>> {};

TEST_P(Pooling, MatchesTheCpuReference) {
  ANVIL_REQUIRE_GPU();
  const auto& [p, type] = GetParam();
  const Tensor x = random_tensor({p.n, p.c, p.h, p.w}, 3);
  const Tensor want = cpu_pool(p, x);
  const cuda::kernels::Pool2d window = gpu_window(p, want);
  const ImageShape in_shape{p.n, p.c, p.h, p.w, p.c_pad};
  const ImageShape out_shape{p.n, p.c, window.out_h, window.out_w, p.c_pad};

  cuda::Stream stream;
  const cuda::DeviceBuffer src = testing::upload(x);
  const cuda::DeviceBuffer nhwc_in =
      testing::poisoned(static_cast<std::size_t>(p.n * p.h * p.w * p.c_pad), type);
  const cuda::DeviceBuffer nhwc_out = testing::poisoned(
      static_cast<std::size_t>(p.n * window.out_h * window.out_w * p.c_pad), type);
  const cuda::DeviceBuffer dst =
      testing::poisoned(static_cast<std::size_t>(want.element_count()), StorageType::kFloat32);
  cuda::kernels::nchw_to_nhwc(src.as<float>(), nhwc_in.data(), type, in_shape, stream.get());
  if (p.op == "MaxPool")
    cuda::kernels::max_pool_2d(nhwc_in.data(), nhwc_out.data(), type, window, stream.get());
  else
    cuda::kernels::average_pool_2d(nhwc_in.data(), nhwc_out.data(), type, window, stream.get());
  cuda::kernels::nhwc_to_nchw(nhwc_out.data(), type, dst.as<float>(), out_shape, stream.get());
  const std::vector<float> got =
      testing::download(dst, static_cast<std::size_t>(want.element_count()), stream);
  EXPECT_TRUE(testing::close(got, want, type, describe(p)));
}

std::vector<PoolCase> pool_cases() {
  const std::vector<std::int64_t> k3{3, 3}, k2{2, 2}, s1{1, 1}, s2{2, 2}, p0{0, 0, 0, 0},
      p1{1, 1, 1, 1};
  std::vector<PoolCase> cases = {
      // ResNet stem: 3x3 stride 2 pad 1.
      // Stored channels a multiple of 16 bytes (8 halves, 4 floats) take the
      // vectorized kernel; c_pad 4 in FP16 and 6 take the general one.
      {"MaxPool", 1, 64, 112, 112, 64, k3, s2, p1, {}},
      {"MaxPool", 3, 3, 19, 21, 4, k3, s2, p1, {}},
      {"MaxPool", 2, 5, 9, 9, 6, k3, s2, p1, {}},
      {"AveragePool", 2, 5, 9, 9, 6, k3, s1, p1, {}, 0, 1},
      {"AveragePool", 3, 3, 12, 11, 4, k3, s2, p1, {}, 0, 0},
      {"MaxPool", 5, 17, 15, 15, 24, k3, s2, p1, {}},
      {"MaxPool", 1, 3, 16, 16, 8, k3, s2, p1, {}},
      {"MaxPool", 5, 3, 9, 13, 8, k2, s2, p0, {}, /*ceil_mode=*/1},
      {"MaxPool", 2, 17, 11, 10, 24, k3, s1, {2, 2, 2, 2}, {2, 2}},
      {"MaxPool", 1, 17, 8, 12, 24, {3, 2}, {2, 1}, {1, 0, 0, 1}, {}},
      {"AveragePool", 1, 17, 14, 14, 24, k3, s1, p1, {}, 0, 0},
      {"AveragePool", 5, 17, 14, 14, 24, k3, s1, p1, {}, 0, 1},
      {"AveragePool", 5, 3, 7, 9, 8, k3, s2, p1, {}, /*ceil_mode=*/1, 1},
      {"AveragePool", 5, 3, 7, 9, 8, k3, s2, p1, {}, /*ceil_mode=*/1, 0},
      {"AveragePool", 1, 3, 12, 12, 8, k2, s2, p0, {}, 0, 0},
      {"AveragePool", 2, 17, 9, 11, 24, {3, 2}, {1, 2}, {0, 1, 2, 0}, {}, 0, 1},
      {"AveragePool", 2, 17, 10, 10, 24, k3, s1, {2, 2, 2, 2}, {2, 2}, 0, 1},
  };
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Kernels, Pooling,
                         ::testing::Combine(::testing::ValuesIn(pool_cases()),
                                            ::testing::Values(StorageType::kFloat32,
                                                              StorageType::kFloat16)));

struct GapCase {
  std::int64_t n, c, h, w, c_pad;
};

void PrintTo(const GapCase& g, std::ostream* os) {
  *os << g.n << "x" << g.c << "x" << g.h << "x" << g.w << "_cpad" << g.c_pad;
}

class GlobalAveragePool : public ::testing::TestWithParam<std::tuple<GapCase, StorageType>> {};

TEST_P(GlobalAveragePool, MatchesTheCpuReference) {
  ANVIL_REQUIRE_GPU();
  const auto& [g, type] = GetParam();
  const std::string what =
      cat("GlobalAveragePool x=[", g.n, ",", g.c, ",", g.h, ",", g.w, "] c_pad=", g.c_pad);
  // Mostly positive, like the ReLU outputs it follows in CNNs.
  const Tensor x = random_tensor({g.n, g.c, g.h, g.w}, 5, -1.0f, 3.0f);
  const Tensor want = testing::OpNode("GlobalAveragePool", 17, 1).run_one(x).reshaped({g.n, g.c});

  cuda::Stream stream;
  const cuda::DeviceBuffer src = testing::upload(x);
  const cuda::DeviceBuffer nhwc =
      testing::poisoned(static_cast<std::size_t>(g.n * g.h * g.w * g.c_pad), type);
  const cuda::DeviceBuffer pooled =
      testing::poisoned(static_cast<std::size_t>(g.n * g.c_pad), type);
  const cuda::DeviceBuffer dst =
      testing::poisoned(static_cast<std::size_t>(g.n * g.c), StorageType::kFloat32);
  cuda::kernels::nchw_to_nhwc(src.as<float>(), nhwc.data(), type, {g.n, g.c, g.h, g.w, g.c_pad},
                              stream.get());
  cuda::kernels::global_average_pool(nhwc.data(), pooled.data(), type, g.n, g.h, g.w, g.c_pad,
                                     stream.get());
  cuda::kernels::unpad_rows(pooled.data(), type, dst.as<float>(), g.n, g.c, g.c_pad, stream.get());
  const std::vector<float> got =
      testing::download(dst, static_cast<std::size_t>(g.n * g.c), stream);
  // A long FP32 sum against the CPU's double one: 1e-5 of the largest mean.
  EXPECT_TRUE(testing::close(got, want, type, what, 1e-5f));
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, GlobalAveragePool,
    ::testing::Combine(::testing::Values(GapCase{1, 512, 7, 7, 512}, GapCase{5, 512, 7, 7, 512},
                                         GapCase{5, 17, 7, 7, 24}, GapCase{2, 3, 5, 9, 8},
                                         GapCase{1, 17, 1, 1, 24}, GapCase{3, 40, 56, 56, 40}),
                       ::testing::Values(StorageType::kFloat32, StorageType::kFloat16)));

class GlobalAveragePoolInt8 : public ::testing::TestWithParam<GapCase> {};

// Bit for bit against the contract, half(float(exact sum) * scale / (h * w)),
// over stored channels (padding included: the kernel averages what is there),
// q across the whole INT8 range; and within an FP16 rounding of the CPU
// GlobalAveragePool of the dequantized values.
TEST_P(GlobalAveragePoolInt8, IsTheExactSumScaled) {
  ANVIL_REQUIRE_GPU();
  const GapCase g = GetParam();
  const float scale = 0.0371f;
  const std::int64_t hw = g.h * g.w;
  std::vector<std::int8_t> q(static_cast<std::size_t>(g.n * hw * g.c_pad));
  std::mt19937 rng(static_cast<std::uint32_t>(g.n * 1000 + g.c_pad));
  std::uniform_int_distribution<int> byte(-128, 127);
  for (std::int8_t& v : q)
    v = static_cast<std::int8_t>(byte(rng));
  if (!q.empty()) q[0] = -128;

  std::vector<__half> want(static_cast<std::size_t>(g.n * g.c_pad));
  std::vector<float> dequantized_mean(want.size());
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t c = 0; c < g.c_pad; ++c) {
      std::int64_t sum = 0;
      for (std::int64_t p = 0; p < hw; ++p)
        sum += q[static_cast<std::size_t>((n * hw + p) * g.c_pad + c)];
      const std::size_t o = static_cast<std::size_t>(n * g.c_pad + c);
      want[o] = __float2half_rn(static_cast<float>(sum) * scale / static_cast<float>(hw));
      dequantized_mean[o] = static_cast<float>(static_cast<double>(sum) * scale / hw);
    }

  cuda::Stream stream;
  cuda::DeviceBuffer x(q.size()), y(want.size() * sizeof(__half));
  cuda::copy_to_device(x.data(), q.data(), q.size());
  ANVIL_GPU_CHECK(cudaMemset(y.data(), 0xff, y.bytes()));  // NaNs
  cuda::kernels::global_average_pool_int8(x.data(), y.data(), g.n, g.h, g.w, g.c_pad, scale,
                                          stream.get());
  stream.synchronize();
  std::vector<__half> got(want.size());
  ANVIL_GPU_CHECK(cudaMemcpy(got.data(), y.data(), y.bytes(), cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const float v = __half2float(got[i]);
    ASSERT_EQ(std::bit_cast<std::uint16_t>(got[i]), std::bit_cast<std::uint16_t>(want[i]))
        << "y[" << i / static_cast<std::size_t>(g.c_pad) << ", "
        << i % static_cast<std::size_t>(g.c_pad) << "] = " << v << ", want "
        << __half2float(want[i]);
    ASSERT_NEAR(v, dequantized_mean[i], std::fabs(dequantized_mean[i]) * 1e-3f + 1e-6f);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, GlobalAveragePoolInt8,
                         ::testing::Values(GapCase{1, 512, 7, 7, 512}, GapCase{128, 512, 7, 7, 512},
                                           GapCase{3, 100, 7, 7, 128}, GapCase{2, 40, 5, 9, 4},
                                           GapCase{1, 17, 1, 1, 36}, GapCase{2, 64, 56, 56, 64},
                                           GapCase{0, 64, 7, 7, 64}));

TEST(GlobalAveragePoolInt8Errors, BadShapesAndArgumentsAreRefused) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer x(4096), y(4096);
  const auto refused = [&](std::int64_t c, float scale, std::size_t x_offset) {
    try {
      cuda::kernels::global_average_pool_int8(static_cast<std::byte*>(x.data()) + x_offset,
                                              y.data(), 1, 2, 2, c, scale, nullptr);
    } catch (const Error& e) {
      return e.kind() == ErrorKind::kInvalidArgument;
    }
    return false;
  };
  EXPECT_TRUE(refused(6, 1.0f, 0)) << "c not a multiple of 4";
  EXPECT_TRUE(refused(8, 0.0f, 0)) << "a zero scale";
  EXPECT_TRUE(refused(8, NAN, 0)) << "a NaN scale";
  EXPECT_TRUE(refused(8, 1.0f, 2)) << "x misaligned";
  EXPECT_FALSE(refused(8, 1.0f, 0));
  ANVIL_GPU_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace anvil
