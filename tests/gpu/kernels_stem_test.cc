// The fused stem kernel (conv 7x7/2 + bias + act, max pool 3x3/2) against a
// plain CPU loop over the same FP16 inputs: the conv in double, rounded to
// FP16 as the kernel stores it, then the pool. Shapes cover ResNet's 224x224,
// both tile sizes, partial tiles at odd sizes, a 1x1 image and batch 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/stem_conv_pool.h"
#include "gpu_test.h"

namespace anvil {
namespace {

namespace k = cuda::kernels;
constexpr int kC = k::kStemInChannels, kK = k::kStemOutChannels, kR = k::kStemKernel;

struct StemCase {
  std::int64_t n, h, w;
  bool relu;
};

std::vector<std::uint16_t> random_halves(std::size_t count, std::uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<std::uint16_t> out(count);
  for (auto& v : out)
    v = builder::float_to_half(dist(rng));
  return out;
}

// y [n, out_h, out_w, 64] as floats.
std::vector<float> cpu_stem(const std::vector<std::uint16_t>& x,
                            const std::vector<std::uint16_t>& w, const std::vector<float>& bias,
                            const k::StemShape& s) {
  const std::int64_t ch = s.conv_h(), cw = s.conv_w();
  std::vector<float> conv(static_cast<std::size_t>(s.n * ch * cw * kK));
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t oy = 0; oy < ch; ++oy)
      for (std::int64_t ox = 0; ox < cw; ++ox)
        for (int m = 0; m < kK; ++m) {
          double acc = bias[static_cast<std::size_t>(m)];
          for (int ky = 0; ky < kR; ++ky)
            for (int kx = 0; kx < kR; ++kx) {
              const std::int64_t iy = 2 * oy - 3 + ky, ix = 2 * ox - 3 + kx;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              for (int c = 0; c < kC; ++c)
                acc +=
                    double{builder::half_to_float(
                        x[static_cast<std::size_t>(((n * s.in_h + iy) * s.in_w + ix) * kC + c)])} *
                    builder::half_to_float(
                        w[static_cast<std::size_t>(((m * kR + ky) * kR + kx) * kC + c)]);
            }
          if (s.relu) acc = std::max(acc, 0.0);
          conv[static_cast<std::size_t>(((n * ch + oy) * cw + ox) * kK + m)] =
              builder::half_to_float(builder::float_to_half(static_cast<float>(acc)));
        }
  std::vector<float> y(static_cast<std::size_t>(s.n * s.out_h() * s.out_w() * kK));
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t py = 0; py < s.out_h(); ++py)
      for (std::int64_t px = 0; px < s.out_w(); ++px)
        for (int m = 0; m < kK; ++m) {
          float best = -INFINITY;
          for (int dy = 0; dy < 3; ++dy)
            for (int dx = 0; dx < 3; ++dx) {
              const std::int64_t cy = 2 * py - 1 + dy, cx = 2 * px - 1 + dx;
              if (cy < 0 || cy >= ch || cx < 0 || cx >= cw) continue;
              best = std::max(best,
                              conv[static_cast<std::size_t>(((n * ch + cy) * cw + cx) * kK + m)]);
            }
          y[static_cast<std::size_t>(((n * s.out_h() + py) * s.out_w() + px) * kK + m)] = best;
        }
  return y;
}

class StemConvPool : public ::testing::TestWithParam<StemCase> {};

TEST_P(StemConvPool, MatchesTheCpuLoop) {
  ANVIL_REQUIRE_GPU();
  const StemCase c = GetParam();
  const k::StemShape shape{c.n, c.h, c.w, c.relu};
  const auto x = random_halves(static_cast<std::size_t>(c.n * c.h * c.w * kC), 1, 2.0f);
  const auto w = random_halves(static_cast<std::size_t>(kK * kR * kR * kC), 2, 0.2f);
  std::vector<float> bias(kK);
  for (int m = 0; m < kK; ++m)
    bias[static_cast<std::size_t>(m)] = 0.05f * static_cast<float>(m % 13) - 0.3f;
  const std::vector<float> want = cpu_stem(x, w, bias, shape);

  cuda::DeviceBuffer d_x(std::max<std::size_t>(x.size(), 1) * 2), d_w(w.size() * 2),
      d_b(bias.size() * 4), d_y(std::max<std::size_t>(want.size(), 1) * 2);
  cuda::copy_to_device(d_x.data(), x.data(), x.size() * 2);
  cuda::copy_to_device(d_w.data(), w.data(), w.size() * 2);
  cuda::copy_to_device(d_b.data(), bias.data(), bias.size() * 4);
  test::poison(d_y.data(), d_y.bytes());
  cuda::Stream stream;
  k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_y.data(), shape, stream.get());
  stream.synchronize();
  std::vector<std::uint16_t> got(want.size());
  ANVIL_GPU_CHECK(cudaMemcpy(got.data(), d_y.data(), got.size() * 2, cudaMemcpyDeviceToHost));

  double max_err = 0, max_want = 1e-6;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const float g = builder::half_to_float(got[i]);
    ASSERT_FALSE(std::isnan(g)) << "output " << i << " was not written";
    const double err = std::abs(double{g} - want[i]);
    if (err > max_err) max_err = err, worst = i;
    max_want = std::max(max_want, std::abs(double{want[i]}));
  }
  const std::string what = "n=" + std::to_string(c.n) + " " + std::to_string(c.h) + "x" +
                           std::to_string(c.w) + (c.relu ? " relu" : " no activation");
  // FP16 inputs, FP32 accumulation on both sides: the difference is the
  // rounding of the stored conv output and of the sums' order.
  EXPECT_LE(max_err, 1e-2 * max_want) << what << ": worst element " << worst << " got "
                                      << (want.empty() ? 0.0f : builder::half_to_float(got[worst]))
                                      << " want " << (want.empty() ? 0.0f : want[worst]);
}

INSTANTIATE_TEST_SUITE_P(Kernels, StemConvPool,
                         // On a 132-SM H100/H200, 20 x 112 x 112 (320 tiles of 8 x 8
                         // pooled pixels, partial ones included) takes the 8 x 8 kernel,
                         // the smaller batches the 4 x 4 one.
                         ::testing::Values(StemCase{20, 112, 112, true},
                                           StemCase{2, 224, 224, true}, StemCase{3, 37, 41, true},
                                           StemCase{1, 19, 16, false}, StemCase{2, 1, 1, true},
                                           StemCase{1, 64, 9, false}, StemCase{0, 224, 224, true}));

TEST(StemConvPool, RejectsMisalignedPointers) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer buffer(1 << 20);
  auto* base = static_cast<char*>(buffer.data());
  EXPECT_THROW(k::stem_conv_pool(base + 8, base, reinterpret_cast<const float*>(base), base,
                                 {1, 16, 16, true}, nullptr),
               Error);
}

}  // namespace
}  // namespace anvil
