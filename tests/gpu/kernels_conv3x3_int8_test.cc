// Our INT8 3x3 convolution (cuda/kernels/conv3x3_int8.h) against the exact
// CPU reference of the conv_int8 contract (int8_reference.h): every output
// element must be the same byte. The cases cover ResNet-18's layer1 shapes,
// bands cut short at the image's bottom, m-tiles cut short at the band's
// end, the widest image, blocks walking many bands (the double-buffered
// loads), no bias, a residual scale other than 1, saturation both ways.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "gpu_test.h"
#include "int8_reference.h"

namespace anvil {
namespace {

using cuda::kernels::Conv3x3Int8;
using cuda::kernels::Conv3x3Int8Shape;
constexpr int kC = cuda::kernels::kConv3x3Int8Channels;

struct Case {
  std::string name;
  Conv3x3Int8Shape shape;
};

cuda::QuantizedConvShape reference_shape(const Conv3x3Int8Shape& s) {
  return {.n = s.n, .h = s.h, .w = s.w, .c = kC, .k = kC, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1};
}

// Runs the case on random data and returns how many output bytes differ
// from the reference (and, through `report`, the first few).
std::int64_t mismatches(const Case& c, std::string& report) {
  const Conv3x3Int8Shape& s = c.shape;
  test::Lcg rng{static_cast<std::uint32_t>(s.n * 7919 + s.h * 131 + s.w)};
  const std::int64_t pixels = s.n * s.h * s.w;
  const auto draw = [&] { return rng.uniform(-128, 127); };
  const std::vector<std::int8_t> x = test::padded_codes(pixels * kC, kC, kC, draw);
  const std::vector<std::int8_t> w = test::padded_codes(kC * 9 * kC, kC, kC, draw);
  const std::vector<std::int8_t> residual = test::padded_codes(pixels * kC, kC, kC, draw);
  // acc is about N(0, (24 x 74^2)^2): these scales put most results inside
  // [-128, 127] and some outside it, on both sides.
  std::vector<float> scale(kC), bias(kC);
  for (int k = 0; k < kC; ++k) {
    scale[static_cast<std::size_t>(k)] = rng.real(1e-4f, 6e-4f);
    bias[static_cast<std::size_t>(k)] = rng.real(-40.0f, 40.0f);
  }
  std::vector<float> residual_value;
  if (s.has_residual)
    for (const std::int8_t r : residual)
      residual_value.push_back(static_cast<float>(r) * s.residual_scale);

  const test::Int8ConvEpilogue e{
      .scale = scale,
      .bias = s.has_bias ? std::span<const float>(bias) : std::span<const float>(),
      .residual = residual_value,
      .relu = s.relu};
  const test::Int8ConvReference want = test::int8_conv_reference(reference_shape(s), x, w, e);

  const cuda::DeviceBuffer dx = test::upload(x.data(), x.size());
  const cuda::DeviceBuffer dw = test::upload(w.data(), w.size());
  const cuda::DeviceBuffer dr = test::upload(residual.data(), residual.size());
  const cuda::DeviceBuffer dscale = test::upload(scale.data(), scale.size() * 4);
  const cuda::DeviceBuffer dbias = test::upload(bias.data(), bias.size() * 4);
  cuda::DeviceBuffer dy(x.size());
  test::poison(dy.data(), dy.bytes());

  const Conv3x3Int8 conv(s);
  const cuda::Stream stream;
  conv.run(dx.data(), dw.data(), dscale.as<float>(), s.has_bias ? dbias.as<float>() : nullptr,
           s.has_residual ? dr.data() : nullptr, dy.data(), stream.get());
  stream.synchronize();
  std::vector<std::int8_t> got(x.size());
  ANVIL_GPU_CHECK(cudaMemcpy(got.data(), dy.data(), got.size(), cudaMemcpyDeviceToHost));

  std::int64_t differ = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want.int8[i]) continue;
    if (++differ <= 5) {
      const std::int64_t k = static_cast<std::int64_t>(i) % kC,
                         pixel = static_cast<std::int64_t>(i) / kC;
      report +=
          cat(" [n ", pixel / (s.h * s.w), " p ", pixel / s.w % s.h, " q ", pixel % s.w, " k ", k,
              ": got ", int{got[i]}, ", want ", int{want.int8[i]}, " (v ", want.value[i], ")]");
    }
  }
  EXPECT_GT(want.saturated, 0) << c.name << ": the data should saturate somewhere";
  return differ;
}

Conv3x3Int8Shape shape(std::int64_t n, std::int64_t h, std::int64_t w, bool relu, bool bias,
                       bool residual, float residual_scale = 1.0f, int max_blocks = 0) {
  return {.n = n,
          .h = h,
          .w = w,
          .relu = relu,
          .has_bias = bias,
          .has_residual = residual,
          .residual_scale = residual_scale,
          .max_blocks = max_blocks};
}

// Each kernel this GPU runs: the mma.sync one, and on Hopper the three wgmma
// ones with both step sizes.
std::vector<Conv3x3Int8Shape> kernels(const Conv3x3Int8Shape& s) {
  using cuda::kernels::Conv3x3Int8Kernel;
  std::vector<Conv3x3Int8Shape> out;
  Conv3x3Int8Shape k = s;
  k.kernel = Conv3x3Int8Kernel::kMmaSync;
  out.push_back(k);
  for (const Conv3x3Int8Kernel kernel :
       {Conv3x3Int8Kernel::kWgmma, Conv3x3Int8Kernel::kWgmmaFilterInRegisters,
        Conv3x3Int8Kernel::kWgmmaFilterInShared})
    for (const int parts : {2, 4}) {
      k.kernel = kernel;
      k.wgmma_parts = parts;
      try {
        const Conv3x3Int8 probe(k);
        out.push_back(k);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kUnsupported) throw;
      }
    }
  return out;
}

std::string kernel_name(const Conv3x3Int8Shape& s) {
  switch (s.kernel) {
    case cuda::kernels::Conv3x3Int8Kernel::kMmaSync:
      return "mma.sync";
    case cuda::kernels::Conv3x3Int8Kernel::kWgmma:
      return cat("wgmma, steps of ", s.wgmma_parts * 64);
    case cuda::kernels::Conv3x3Int8Kernel::kWgmmaFilterInRegisters:
      return cat("wgmma with the filter in registers, steps of ", s.wgmma_parts * 64);
    case cuda::kernels::Conv3x3Int8Kernel::kWgmmaFilterInShared:
      return cat("wgmma with the filter as A in shared memory, steps of ", s.wgmma_parts * 64);
  }
  return "?";
}

TEST(Conv3x3Int8, MatchesTheReferenceExactly) {
  ANVIL_REQUIRE_GPU();
  const std::vector<Case> cases = {
      {"layer1 conv (ReLU)", shape(2, 56, 56, true, true, false)},
      {"layer1 conv with the residual (ReLU)", shape(2, 56, 56, true, true, true)},
      {"no activation, no bias, residual x 0.75, 7 x 9", shape(3, 7, 9, false, false, true, 0.75f)},
      {"one pixel", shape(2, 1, 1, true, true, true)},
      {"13 x 100: bands of 2, the last one row", shape(2, 13, 100, true, true, true)},
      {"5 x 256: the widest, bands of 1", shape(1, 5, 256, false, true, false)},
      {"56 x 56 on 3 blocks: each walks 10 bands", shape(2, 56, 56, true, true, true, 1.0f, 3)},
      {"9 x 30 on 1 block", shape(3, 9, 30, false, true, true, 1.0f, 1)},
      {"28 x 28 on 4 blocks", shape(3, 28, 28, true, true, true, 1.0f, 4)},
  };
  for (const Case& c : cases)
    for (const Conv3x3Int8Shape& k : kernels(c.shape)) {
      std::string report;
      EXPECT_EQ(mismatches({c.name, k}, report), 0)
          << c.name << ", " << kernel_name(k) << ":" << report;
    }
}

TEST(Conv3x3Int8, RefusesWhatItCannotRun) {
  ANVIL_REQUIRE_GPU();
  // Nothing when the shape is accepted.
  const auto refusal = [](const Conv3x3Int8Shape& s) -> std::optional<ErrorKind> {
    try {
      Conv3x3Int8 conv(s);
      return std::nullopt;
    } catch (const Error& e) {
      return e.kind();
    }
  };
  EXPECT_EQ(refusal(shape(0, 56, 56, true, true, false)), ErrorKind::kInvalidArgument);
  EXPECT_EQ(refusal(shape(1, 4, 257, true, true, false)), ErrorKind::kUnsupported);
  EXPECT_EQ(refusal(shape(1, 4, 256, true, true, false)), std::nullopt);

  const Conv3x3Int8 conv(shape(1, 8, 8, true, true, true));
  const cuda::DeviceBuffer buffer(1 << 16);
  char* p = static_cast<char*>(buffer.data());
  const float* f = buffer.as<float>();
  EXPECT_THROW(conv.run(p, p, f, f, p, nullptr, nullptr), Error);  // no y
  EXPECT_THROW(conv.run(p + 4, p, f, f, p, p, nullptr), Error);    // misaligned x
  EXPECT_THROW(conv.run(p, p, f, f, nullptr, p, nullptr), Error);  // residual missing
  EXPECT_THROW(conv.run(p, p, f, nullptr, p, p, nullptr), Error);  // bias missing
}

}  // namespace
}  // namespace anvil
