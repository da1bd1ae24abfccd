// The fused stem kernel (conv 7x7/2 + bias + act, max pool 3x3/2) against a
// plain CPU loop over the same FP16 inputs: the conv in double, rounded to
// FP16 as the kernel stores it, then the pool. Shapes cover ResNet's 224x224,
// both tile sizes, partial tiles at odd sizes, a 1x1 image and batch 0.
// The INT8 variant (StemShape::int8_scale) against the FP16 one followed by
// quantize_int8: bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/quantize.h"
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

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const StemCase& c, std::ostream* os) {
  *os << "n" << c.n << "_" << c.h << "x" << c.w << (c.relu ? "_relu" : "");
}

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

// The kernels that can compute `shape` here: the tiled one always, the row
// kernel on Hopper for 224-wide inputs.
std::vector<k::StemKernel> kernels_for(const k::StemShape& shape) {
  std::vector<k::StemKernel> kernels{k::StemKernel::kTiles};
  if (k::stem_rows_applies(shape)) kernels.push_back(k::StemKernel::kRows);
  return kernels;
}

const char* name(k::StemKernel kernel) {
  return kernel == k::StemKernel::kRows ? "row kernel" : "tiled kernel";
}

// The first `bytes` of two device buffers are the same.
void expect_same_bytes(const cuda::DeviceBuffer& want, const cuda::DeviceBuffer& got,
                       std::size_t bytes) {
  std::vector<unsigned char> w(bytes), g(bytes);
  ANVIL_GPU_CHECK(cudaMemcpy(w.data(), want.data(), bytes, cudaMemcpyDeviceToHost));
  ANVIL_GPU_CHECK(cudaMemcpy(g.data(), got.data(), bytes, cudaMemcpyDeviceToHost));
  std::size_t mismatches = 0, first = bytes;
  for (std::size_t i = 0; i < bytes; ++i)
    if (g[i] != w[i] && mismatches++ == 0) first = i;
  EXPECT_EQ(mismatches, 0u) << "of " << bytes << " output bytes; the first at byte " << first;
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
  cuda::Stream stream;
  for (const k::StemKernel kernel : kernels_for(shape)) {
    k::StemShape run = shape;
    run.kernel = kernel;
    test::poison(d_y.data(), d_y.bytes());
    k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_y.data(), run, stream.get());
    stream.synchronize();
    std::vector<std::uint16_t> got(want.size());
    ANVIL_GPU_CHECK(cudaMemcpy(got.data(), d_y.data(), got.size() * 2, cudaMemcpyDeviceToHost));

    double max_err = 0, max_want = 1e-6;
    std::size_t worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const float g = builder::half_to_float(got[i]);
      ASSERT_FALSE(std::isnan(g)) << name(kernel) << ": output " << i << " was not written";
      const double err = std::abs(double{g} - want[i]);
      if (err > max_err) max_err = err, worst = i;
      max_want = std::max(max_want, std::abs(double{want[i]}));
    }
    const std::string what = std::string(name(kernel)) + " n=" + std::to_string(c.n) + " " +
                             std::to_string(c.h) + "x" + std::to_string(c.w) +
                             (c.relu ? " relu" : " no activation");
    // FP16 inputs, FP32 accumulation on both sides: the difference is the
    // rounding of the stored conv output and of the sums' order.
    EXPECT_LE(max_err, 1e-2 * max_want)
        << what << ": worst element " << worst << " got "
        << (want.empty() ? 0.0f : builder::half_to_float(got[worst])) << " want "
        << (want.empty() ? 0.0f : want[worst]);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, StemConvPool,
                         // On a 132-SM H100/H200, 20 x 112 x 112 (320 tiles of 7 x 8
                         // pooled pixels, partial ones included, on 264 persistent
                         // blocks) takes the 7 x 8 tiles, the smaller batches the 4 x 4
                         // ones. The 224-wide cases run both kernels: the row kernel in
                         // bands of 2 pooled rows, 61 high ending on a pooled row with
                         // no conv row below it, 1 high with one conv row.
                         ::testing::Values(StemCase{20, 112, 112, true},
                                           StemCase{2, 224, 224, true}, StemCase{3, 61, 224, false},
                                           StemCase{1, 1, 224, true}, StemCase{3, 37, 41, true},
                                           StemCase{1, 19, 16, false}, StemCase{2, 1, 1, true},
                                           StemCase{1, 64, 9, false}, StemCase{0, 224, 224, true}));

// The FP32 NCHW input (StemShape::input) against the FP16 NHWC one made from
// it as reformat_in makes it: the same output bits, FP16 and INT8. Widths
// that are a multiple of 4 load whole 16-byte chunks, the others floats.
class StemConvPoolFp32Input : public ::testing::TestWithParam<StemCase> {};

TEST_P(StemConvPoolFp32Input, EqualsReformattingThenTheFp16Input) {
  ANVIL_REQUIRE_GPU();
  const StemCase c = GetParam();
  k::StemShape shape{c.n, c.h, c.w, c.relu};
  const auto plane = static_cast<std::size_t>(c.h * c.w);
  const auto images = static_cast<std::size_t>(c.n);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-2.5f, 2.5f);
  std::vector<float> nchw(images * 3 * plane);
  for (float& v : nchw)
    v = dist(rng);
  std::vector<std::uint16_t> nhwc(images * plane * kC, 0);  // channel 3 stays 0
  for (std::size_t n = 0; n < images; ++n)
    for (std::size_t ch = 0; ch < 3; ++ch)
      for (std::size_t p = 0; p < plane; ++p)
        nhwc[(n * plane + p) * kC + ch] = builder::float_to_half(nchw[(n * 3 + ch) * plane + p]);
  const auto w = random_halves(static_cast<std::size_t>(kK * kR * kR * kC), 2, 0.2f);
  std::vector<float> bias(kK);
  for (int m = 0; m < kK; ++m)
    bias[static_cast<std::size_t>(m)] = 0.05f * static_cast<float>(m % 13) - 0.3f;
  const auto outputs = static_cast<std::size_t>(c.n * shape.out_h() * shape.out_w() * kK);

  cuda::DeviceBuffer d_nchw(std::max<std::size_t>(nchw.size(), 1) * 4),
      d_nhwc(std::max<std::size_t>(nhwc.size(), 1) * 2), d_w(w.size() * 2), d_b(bias.size() * 4),
      d_want(std::max<std::size_t>(outputs, 1) * 2), d_got(std::max<std::size_t>(outputs, 1) * 2);
  cuda::copy_to_device(d_nchw.data(), nchw.data(), nchw.size() * 4);
  cuda::copy_to_device(d_nhwc.data(), nhwc.data(), nhwc.size() * 2);
  cuda::copy_to_device(d_w.data(), w.data(), w.size() * 2);
  cuda::copy_to_device(d_b.data(), bias.data(), bias.size() * 4);
  cuda::Stream stream;
  for (const k::StemKernel kernel : kernels_for(shape))
    for (const float scale : {0.0f, 0.0625f}) {  // FP16 out, INT8 out
      SCOPED_TRACE(std::string(name(kernel)) + (scale == 0.0f ? ", FP16 output" : ", INT8 output"));
      shape.kernel = kernel;
      shape.int8_scale = scale;
      shape.int8_by_reciprocal = scale > 0.0f && k::stem_int8_rounds_by_reciprocal(scale);
      const std::size_t bytes = outputs * (scale > 0.0f ? 1 : 2);
      test::poison(d_want.data(), d_want.bytes());
      test::poison(d_got.data(), d_got.bytes());
      shape.input = k::StemInput::kFloat16Nhwc4;
      k::stem_conv_pool(d_nhwc.data(), d_w.data(), d_b.as<float>(), d_want.data(), shape,
                        stream.get());
      shape.input = k::StemInput::kFloat32Nchw;
      k::stem_conv_pool(d_nchw.data(), d_w.data(), d_b.as<float>(), d_got.data(), shape,
                        stream.get());
      stream.synchronize();
      expect_same_bytes(d_want, d_got, bytes);
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, StemConvPoolFp32Input,
                         // 224 and 16 wide: whole chunks; 41, 9 and 1: floats. n=128
                         // 224x224 is ResNet's batch on the 7 x 8 kernel, persistent.
                         ::testing::Values(StemCase{128, 224, 224, true},
                                           StemCase{20, 112, 112, true},
                                           StemCase{2, 224, 224, false}, StemCase{3, 37, 41, true},
                                           StemCase{1, 19, 16, false}, StemCase{2, 1, 1, true},
                                           StemCase{1, 64, 9, false}, StemCase{0, 224, 224, true}));

// The row kernel against the tiled one at two batches, with the band
// height chosen by the batch (28 pooled rows at 128, 8 at 40 since the
// twelfth session's rule) and with bands of 2, 4, 7 and 14 (the CPU loop above
// would take minutes there): FP32 input, FP16 output, within the CPU
// test's bound (the two sum in different orders) and mostly the same bits
// (all of them in the eleventh session's run, at bands of 8 and 4).
TEST(StemConvPoolRows, AgreesWithTheTiledKernel) {
  ANVIL_REQUIRE_GPU();
  for (const std::int64_t n : {128, 40}) {
    k::StemShape shape{n, 224, 224, true, k::StemInput::kFloat32Nchw};
    if (!k::stem_rows_applies(shape))
      GTEST_SKIP() << "no row kernel here (needs sm_90a code on an sm_90 GPU)";
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> dist(-2.5f, 2.5f);
    std::vector<float> x(static_cast<std::size_t>(n * 3 * 224 * 224));
    for (float& v : x)
      v = dist(rng);
    const auto w = random_halves(static_cast<std::size_t>(kK * kR * kR * kC), 2, 0.2f);
    std::vector<float> bias(kK);
    for (int m = 0; m < kK; ++m)
      bias[static_cast<std::size_t>(m)] = 0.05f * static_cast<float>(m % 13) - 0.3f;
    const auto outputs = static_cast<std::size_t>(n * shape.out_h() * shape.out_w() * kK);
    cuda::DeviceBuffer d_x(x.size() * 4), d_w(w.size() * 2), d_b(bias.size() * 4),
        d_tiles(outputs * 2), d_rows(outputs * 2);
    cuda::copy_to_device(d_x.data(), x.data(), x.size() * 4);
    cuda::copy_to_device(d_w.data(), w.data(), w.size() * 2);
    cuda::copy_to_device(d_b.data(), bias.data(), bias.size() * 4);
    test::poison(d_tiles.data(), d_tiles.bytes());
    cuda::Stream stream;
    shape.kernel = k::StemKernel::kTiles;
    k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_tiles.data(), shape, stream.get());
    stream.synchronize();
    std::vector<std::uint16_t> tiles(outputs), rows(outputs);
    ANVIL_GPU_CHECK(cudaMemcpy(tiles.data(), d_tiles.data(), outputs * 2, cudaMemcpyDeviceToHost));
    // The default band height, and the rule's other heights (StemShape::band_rows).
    for (const std::int64_t band_rows : {0, 2, 4, 7, 14}) {
      const std::string what = "n=" + std::to_string(n) + " band rows " + std::to_string(band_rows);
      test::poison(d_rows.data(), d_rows.bytes());
      shape.kernel = k::StemKernel::kRows;
      shape.band_rows = band_rows;
      k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_rows.data(), shape,
                        stream.get());
      stream.synchronize();
      ANVIL_GPU_CHECK(cudaMemcpy(rows.data(), d_rows.data(), outputs * 2, cudaMemcpyDeviceToHost));
      double max_err = 0, max_value = 1e-6;
      std::size_t differ = 0, worst = 0;
      for (std::size_t i = 0; i < outputs; ++i) {
        const float t = builder::half_to_float(tiles[i]), r = builder::half_to_float(rows[i]);
        ASSERT_FALSE(std::isnan(r)) << what << ": output " << i << " was not written";
        const double err = std::abs(double{r} - t);
        if (err > max_err) max_err = err, worst = i;
        max_value = std::max(max_value, std::abs(double{t}));
        differ += tiles[i] != rows[i];
      }
      std::printf(
          "[ ROWS     ] %s: %zu of %zu outputs differ from the tiled kernel's, by %g at most\n",
          what.c_str(), differ, outputs, max_err);
      EXPECT_LE(max_err, 1e-2 * max_value) << what << ": worst output " << worst;
      EXPECT_LT(differ, outputs / 100)
          << what << ": the sums' order should rarely change an FP16 result";
    }
  }
}

// uint8 RGB images read by the row kernel itself (StemInput::kUint8Nhwc)
// against images_to_engine_storage's FP16 NHWC4 storage of them read as
// usual: the same output bits, FP16 and INT8, with ImageNet's normalization
// and another. The cases: ResNet's batch (bands of 28 pooled rows), one
// ending on a pooled row with no conv row below, and a 1-row image (every
// other input row is padding, which must stay 0 after normalization).
TEST(StemConvPoolImages, EqualsNormalizingThenTheFp16Input) {
  ANVIL_REQUIRE_GPU();
  for (const StemCase c :
       {StemCase{128, 224, 224, true}, StemCase{3, 61, 224, false}, StemCase{2, 1, 224, true}}) {
    k::StemShape shape{c.n, c.h, c.w, c.relu};
    if (!k::stem_reads_images(shape))
      GTEST_SKIP() << "no row kernel here (needs sm_90a code on an sm_90 GPU)";
    std::ostringstream what;
    PrintTo(c, &what);
    std::mt19937 rng(17);
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<std::uint8_t> images(static_cast<std::size_t>(c.n * c.h * c.w * 3));
    for (std::uint8_t& b : images)
      b = static_cast<std::uint8_t>(byte(rng));
    const auto w = random_halves(static_cast<std::size_t>(kK * kR * kR * kC), 2, 0.2f);
    std::vector<float> bias(kK);
    for (int m = 0; m < kK; ++m)
      bias[static_cast<std::size_t>(m)] = 0.05f * static_cast<float>(m % 13) - 0.3f;
    const auto outputs = static_cast<std::size_t>(c.n * shape.out_h() * shape.out_w() * kK);
    cuda::DeviceBuffer d_images(images.size()), d_storage(images.size() / 3 * kC * 2),
        d_w(w.size() * 2), d_b(bias.size() * 4), d_want(outputs * 2), d_got(outputs * 2);
    cuda::copy_to_device(d_images.data(), images.data(), images.size());
    cuda::copy_to_device(d_w.data(), w.data(), w.size() * 2);
    cuda::copy_to_device(d_b.data(), bias.data(), bias.size() * 4);
    cuda::Stream stream;
    k::Normalization other;
    for (int ch = 0; ch < 3; ++ch) {
      other.mean[ch] = 0.5f - 0.1f * static_cast<float>(ch);
      other.std[ch] = 0.2f + 0.05f * static_cast<float>(ch);
    }
    for (const k::Normalization& norm : {k::Normalization{}, other})
      for (const float scale : {0.0f, 0.0625f}) {  // FP16 out, INT8 out
        SCOPED_TRACE(what.str() + (norm.mean[0] == other.mean[0] ? ", other normalization" : "") +
                     (scale == 0.0f ? ", FP16 output" : ", INT8 output"));
        shape.int8_scale = scale;
        shape.int8_by_reciprocal = scale > 0.0f && k::stem_int8_rounds_by_reciprocal(scale);
        const std::size_t bytes = outputs * (scale > 0.0f ? 1 : 2);
        test::poison(d_want.data(), d_want.bytes());
        test::poison(d_got.data(), d_got.bytes());
        const k::ImageBatchShape batch{c.n, c.h, c.w};
        k::images_to_engine_storage(d_images.as<std::uint8_t>(), d_storage.data(),
                                    k::StorageType::kFloat16, kC, batch, norm, stream.get());
        shape.input = k::StemInput::kFloat16Nhwc4;
        k::stem_conv_pool(d_storage.data(), d_w.data(), d_b.as<float>(), d_want.data(), shape,
                          stream.get());
        shape.input = k::StemInput::kUint8Nhwc;
        shape.image_affine = k::fold_normalization(norm);
        k::stem_conv_pool(d_images.data(), d_w.data(), d_b.as<float>(), d_got.data(), shape,
                          stream.get());
        stream.synchronize();
        expect_same_bytes(d_want, d_got, bytes);
      }
  }
}

// Images go to the row kernel only: elsewhere one error says what to do.
TEST(StemConvPoolImages, AreRefusedWhereTheRowKernelCannotRun) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer buffer(1 << 20);
  void* p = buffer.data();
  k::StemShape narrow{1, 16, 16, true, k::StemInput::kUint8Nhwc};
  EXPECT_FALSE(k::stem_reads_images(narrow));
  k::StemShape tiles{1, 224, 224, true, k::StemInput::kUint8Nhwc};
  tiles.kernel = k::StemKernel::kTiles;
  for (const k::StemShape& shape : {narrow, tiles}) {
    try {
      k::stem_conv_pool(p, p, static_cast<const float*>(p), p, shape, nullptr);
      ADD_FAILURE() << "uint8 images " << shape.in_w << " wide were accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find("images_to_engine_storage"), std::string::npos)
          << e.what();
    }
  }
}

struct Int8Case {
  std::int64_t n, h, w;
  bool relu;
  bool inf_patch;  // +inf over part of image 0: inf - inf in the conv, NaN into the pool
};

void PrintTo(const Int8Case& c, std::ostream* os) {
  *os << "n" << c.n << "_" << c.h << "x" << c.w << (c.relu ? "_relu" : "")
      << (c.inf_patch ? "_inf" : "");
}

class StemConvPoolInt8 : public ::testing::TestWithParam<Int8Case> {};

TEST_P(StemConvPoolInt8, EqualsTheFp16StemThenQuantize) {
  ANVIL_REQUIRE_GPU();
  const Int8Case c = GetParam();
  const k::StemShape shape{c.n, c.h, c.w, c.relu};
  auto x = random_halves(static_cast<std::size_t>(c.n * c.h * c.w * kC), 3, 2.0f);
  if (c.inf_patch)
    for (std::int64_t iy = 8; iy < std::min<std::int64_t>(c.h, 40); ++iy)
      for (std::int64_t ix = 8; ix < std::min<std::int64_t>(c.w, 40); ++ix)
        for (int ch = 0; ch < kC; ++ch)
          x[static_cast<std::size_t>((iy * c.w + ix) * kC + ch)] = 0x7c00;  // +inf
  const auto w = random_halves(static_cast<std::size_t>(kK * kR * kR * kC), 4, 0.2f);
  std::vector<float> bias(kK);
  for (int m = 0; m < kK; ++m)
    bias[static_cast<std::size_t>(m)] = 0.05f * static_cast<float>(m % 13) - 0.3f;
  const std::size_t elements = static_cast<std::size_t>(c.n * shape.out_h() * shape.out_w() * kK);
  const std::string what = "n=" + std::to_string(c.n) + " " + std::to_string(c.h) + "x" +
                           std::to_string(c.w) + (c.relu ? " relu" : " no activation") +
                           (c.inf_patch ? " inf patch" : "");

  cuda::DeviceBuffer d_x(x.size() * 2), d_w(w.size() * 2), d_b(bias.size() * 4),
      d_fp16(elements * 2), d_want(elements), d_got(elements);
  cuda::copy_to_device(d_x.data(), x.data(), x.size() * 2);
  cuda::copy_to_device(d_w.data(), w.data(), w.size() * 2);
  cuda::copy_to_device(d_b.data(), bias.data(), bias.size() * 4);
  test::poison(d_fp16.data(), d_fp16.bytes());
  cuda::Stream stream;
  k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_fp16.data(), shape, stream.get());
  stream.synchronize();
  std::vector<std::uint16_t> fp16(elements);
  ANVIL_GPU_CHECK(cudaMemcpy(fp16.data(), d_fp16.data(), elements * 2, cudaMemcpyDeviceToHost));
  std::size_t non_finite = 0;
  for (const std::uint16_t h : fp16)
    non_finite += (h & 0x7c00) == 0x7c00;
  if (!c.inf_patch) {
    ASSERT_EQ(non_finite, 0u) << what << ": the FP16 variant left outputs unwritten";
  } else if (!c.relu) {  // (ReLU turns NaN into 0)
    EXPECT_GT(non_finite, 0u) << what << ": the patch should reach the output as inf or NaN";
  }

  // 0.01 saturates most outputs, 2^-4 makes many quotients exact halves
  // (rounding to even), 0.37 leaves most in range; each is run with the
  // checked rounding and the reciprocal one (every FP16 value rounds alike
  // by reciprocal at these scales). 0.3 is one where some do not (2.25 /
  // 0.3): the launcher is told so and checks.
  struct Rounding {
    float scale;
    bool by_reciprocal;
  };
  const Rounding roundings[] = {{0.01f, false}, {0.01f, true}, {0.0625f, false}, {0.0625f, true},
                                {0.37f, false}, {0.37f, true}, {0.3f, false}};
  const unsigned char fills[] = {0x7b, 0xb3, 0x55};  // rarely the answer at all three
  for (std::size_t si = 0; si < std::size(roundings); ++si) {
    const float scale = roundings[si].scale;
    const bool by_reciprocal = roundings[si].by_reciprocal;
    ASSERT_EQ(k::stem_int8_rounds_by_reciprocal(scale), scale != 0.3f) << "scale " << scale;
    SCOPED_TRACE(what + " scale " + std::to_string(scale) +
                 (by_reciprocal ? " by reciprocal" : " checked"));
    k::quantize_int8(d_fp16.data(), d_want.as<std::int8_t>(), static_cast<std::int64_t>(elements),
                     scale, stream.get());
    ANVIL_GPU_CHECK(cudaMemset(d_got.data(), fills[si % std::size(fills)], elements));
    ANVIL_GPU_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
    k::StemShape int8_shape = shape;
    int8_shape.int8_scale = scale;
    int8_shape.int8_by_reciprocal = by_reciprocal;
    k::stem_conv_pool(d_x.data(), d_w.data(), d_b.as<float>(), d_got.data(), int8_shape,
                      stream.get());
    stream.synchronize();
    std::vector<std::int8_t> want(elements), got(elements);
    ANVIL_GPU_CHECK(cudaMemcpy(want.data(), d_want.data(), elements, cudaMemcpyDeviceToHost));
    ANVIL_GPU_CHECK(cudaMemcpy(got.data(), d_got.data(), elements, cudaMemcpyDeviceToHost));
    std::size_t mismatches = 0, first = elements, saturated = 0;
    for (std::size_t i = 0; i < elements; ++i) {
      saturated += want[i] == 127 || want[i] == -128;
      if (got[i] != want[i] && mismatches++ == 0) first = i;
    }
    std::printf(
        "[ INT8     ] %s scale %g%s: %zu outputs, %zu saturated, %zu non-finite FP16, %zu "
        "mismatches\n",
        what.c_str(), static_cast<double>(scale), by_reciprocal ? " by reciprocal" : "", elements,
        saturated, non_finite, mismatches);
    if (mismatches > 0) {
      const std::size_t px = first / kK;
      ADD_FAILURE() << mismatches << " of " << elements << " outputs differ; first at image "
                    << px / static_cast<std::size_t>(shape.out_h() * shape.out_w()) << " pixel ("
                    << px / static_cast<std::size_t>(shape.out_w()) %
                           static_cast<std::size_t>(shape.out_h())
                    << ", " << px % static_cast<std::size_t>(shape.out_w()) << ") channel "
                    << first % kK << ": got " << int{got[first]} << " want " << int{want[first]}
                    << " (FP16 value " << builder::half_to_float(fp16[first]) << " = 0x" << std::hex
                    << fp16[first] << std::dec
                    << ", / scale = " << builder::half_to_float(fp16[first]) / scale << ")";
    }
    if (scale == 0.01f && !c.inf_patch) {
      EXPECT_GT(saturated, elements / 4) << "this scale is meant to saturate many outputs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, StemConvPoolInt8,
    // On a 132-SM H100: n=1 224x224 and n=3 37x41 take the 4 x 4 kernel
    // with a tile per block, n=3 224x224 the 4 x 4 one with persistent
    // blocks (588 tiles, 528 blocks), n=128 the 7 x 8 one, persistent at 224
    // (7168 tiles at 224x224, 1792 at 112x112, on 264 blocks).
    ::testing::Values(Int8Case{1, 224, 224, true, false}, Int8Case{1, 19, 16, false, false},
                      Int8Case{3, 37, 41, true, false}, Int8Case{3, 224, 224, false, false},
                      Int8Case{3, 64, 64, false, true}, Int8Case{128, 224, 224, true, false},
                      Int8Case{128, 224, 224, false, false}, Int8Case{128, 112, 112, true, true}));

TEST(StemConvPoolInt8, RejectsABadScale) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer buffer(1 << 20);
  void* p = buffer.data();
  for (const float bad : {-1.0f, NAN, INFINITY}) {
    k::StemShape shape{1, 16, 16, true};
    shape.int8_scale = bad;
    EXPECT_THROW(k::stem_conv_pool(p, p, static_cast<const float*>(p), p, shape, nullptr), Error)
        << "scale " << bad;
  }
}

TEST(StemConvPool, RejectsMisalignedPointers) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer buffer(1 << 20);
  auto* base = static_cast<char*>(buffer.data());
  EXPECT_THROW(k::stem_conv_pool(base + 8, base, reinterpret_cast<const float*>(base), base,
                                 {1, 16, 16, true}, nullptr),
               Error);
}

TEST(StemConvPool, RefusesTheRowKernelWhereItCannotRunAndANegativeBand) {
  ANVIL_REQUIRE_GPU();
  cuda::DeviceBuffer buffer(1 << 20);
  void* p = buffer.data();
  k::StemShape narrow{1, 16, 16, true};  // the row kernel takes 224-wide inputs only
  narrow.kernel = k::StemKernel::kRows;
  EXPECT_THROW(k::stem_conv_pool(p, p, static_cast<const float*>(p), p, narrow, nullptr), Error);
  k::StemShape negative{1, 16, 16, true};
  negative.band_rows = -1;
  EXPECT_THROW(k::stem_conv_pool(p, p, static_cast<const float*>(p), p, negative, nullptr), Error);
}

}  // namespace
}  // namespace anvil
