// The image preprocessing kernels (src/cuda/kernels/preprocess.h): uint8 HWC
// (and CHW: planar sources give the packed ones' bits) images normalized as io::preprocess_imagenet
// does, to NCHW FP32 and to the engine's padded NHWC storage (padding exactly zero), bit for bit
// what images_to_nchw + the engine's reformat_in give, also inside a CUDA graph.
#include <cuda_fp16.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <ostream>
#include <random>

#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/reformat.h"
#include "gpu_test.h"
#include "io/image.h"
#include "kernels_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::ChannelOrder;
using cuda::kernels::ImageBatchShape;
using cuda::kernels::Normalization;
using cuda::kernels::StorageType;

std::vector<std::uint8_t> random_pixels(std::int64_t bytes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(bytes));
  for (auto& b : out)
    b = static_cast<std::uint8_t>(dist(rng));
  return out;
}

// The bytes on the device `offset` bytes past a cudaMalloc'd (256-aligned)
// start: an odd offset forces the kernels off their aligned 12-byte loads.
struct DeviceImages {
  cuda::DeviceBuffer buffer;
  std::int64_t offset = 0;
  const std::uint8_t* data() const { return buffer.as<std::uint8_t>() + offset; }
};

DeviceImages upload_bytes(const std::vector<std::uint8_t>& bytes, std::int64_t offset) {
  DeviceImages d{cuda::DeviceBuffer(bytes.size() + static_cast<std::size_t>(offset) + 1), offset};
  cuda::copy_to_device(d.buffer.as<std::uint8_t>() + offset, bytes.data(), bytes.size());
  return d;
}

// The CPU reference, written as io::preprocess_imagenet normalizes:
// [n, 3, h, w] with channel 0 red whatever the byte order.
Tensor reference_nchw(const std::vector<std::uint8_t>& images, const ImageBatchShape& s,
                      const Normalization& norm) {
  Tensor out(DType::kFloat32, {s.n, 3, s.h, s.w});
  const std::int64_t hw = s.h * s.w;
  for (std::int64_t n = 0; n < s.n; ++n)
    for (int c = 0; c < 3; ++c)
      for (std::int64_t p = 0; p < hw; ++p) {
        const int byte = s.order == ChannelOrder::kBgr ? 2 - c : c;
        const float v = images[static_cast<std::size_t>((n * hw + p) * 3 + byte)] / 255.0f;
        out.data<float>()[(n * 3 + c) * hw + p] = (v - norm.mean[c]) / norm.std[c];
      }
  return out;
}

// A device buffer of storage values read back as floats.
std::vector<float> stored_values(const void* device, std::size_t count, StorageType type) {
  std::vector<float> out(count);
  if (type == StorageType::kFloat32) {
    ANVIL_GPU_CHECK(cudaMemcpy(out.data(), device, count * 4, cudaMemcpyDeviceToHost));
    return out;
  }
  std::vector<__half> halves(count);
  ANVIL_GPU_CHECK(cudaMemcpy(halves.data(), device, count * 2, cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < count; ++i)
    out[i] = __half2float(halves[i]);
  return out;
}

const char* order_name(ChannelOrder order) {
  return order == ChannelOrder::kBgr ? "BGR" : "RGB";
}

// Not ImageNet's: catches a kernel that ignores the constants it is given.
Normalization custom_normalization() {
  Normalization norm;
  const float mean[3] = {0.5f, 0.25f, 0.125f}, deviation[3] = {0.5f, 0.3f, 0.7f};
  for (int c = 0; c < 3; ++c)
    norm.mean[c] = mean[c], norm.std[c] = deviation[c];
  return norm;
}

struct NchwCase {
  ImageBatchShape shape;
  std::int64_t src_offset = 0;
  bool custom_norm = false;
};

std::string describe(const NchwCase& c) {
  return cat("n=", c.shape.n, " h=", c.shape.h, " w=", c.shape.w, " ", order_name(c.shape.order),
             " src_offset=", c.src_offset, c.custom_norm ? " custom mean/std" : "");
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const NchwCase& c, std::ostream* os) {
  *os << "n" << c.shape.n << "_" << c.shape.h << "x" << c.shape.w << "_"
      << order_name(c.shape.order) << "_off" << c.src_offset << (c.custom_norm ? "_custom" : "");
}

class PreprocessNchw : public ::testing::TestWithParam<NchwCase> {};

TEST_P(PreprocessNchw, MatchesTheCpuNormalization) {
  ANVIL_REQUIRE_GPU();
  const NchwCase& nc = GetParam();
  const ImageBatchShape& s = nc.shape;
  const Normalization norm = nc.custom_norm ? custom_normalization() : Normalization{};
  const std::vector<std::uint8_t> images = random_pixels(s.n * s.h * s.w * 3, 3);
  const Tensor want = reference_nchw(images, s, norm);
  const std::size_t count = static_cast<std::size_t>(want.element_count());
  cuda::Stream stream;
  const DeviceImages src = upload_bytes(images, nc.src_offset);
  const cuda::DeviceBuffer dst = testing::poisoned(count, StorageType::kFloat32);
  cuda::kernels::images_to_nchw(src.data(), dst.as<float>(), s, norm, stream.get());
  EXPECT_TRUE(testing::close(testing::download(dst, count, stream), want, StorageType::kFloat32,
                             describe(nc), 1e-5f));
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, PreprocessNchw,
    ::testing::Values(
        NchwCase{{3, 224, 224, ChannelOrder::kRgb}}, NchwCase{{3, 224, 224, ChannelOrder::kBgr}},
        NchwCase{{2, 17, 13, ChannelOrder::kRgb}},
        NchwCase{{2, 17, 13, ChannelOrder::kBgr}, 0, true}, NchwCase{{1, 1, 1, ChannelOrder::kRgb}},
        NchwCase{{1, 1, 1, ChannelOrder::kBgr}},
        // h * w % 4 == 0 takes the 4-pixel path; an odd offset the 1-pixel one.
        NchwCase{{2, 8, 6, ChannelOrder::kRgb}, 0, true},
        NchwCase{{2, 8, 6, ChannelOrder::kBgr}, 1}, NchwCase{{5, 3, 5, ChannelOrder::kRgb}, 3}));

// The normalization is the project's own: io::preprocess_imagenet on a
// 256 x 256 image only crops (its resize to 224 * 256 / 224 is the identity),
// so its output is the GPU's on the 224 x 224 center, in either byte order.
TEST(PreprocessNchw, MatchesPreprocessImagenetOnACenterCrop) {
  ANVIL_REQUIRE_GPU();
  constexpr int kFull = 256, kSize = 224, kTop = (kFull - kSize) / 2;
  io::Image image{kFull, kFull, random_pixels(kFull * kFull * 3, 5)};
  Tensor want(DType::kFloat32, {1, 3, kSize, kSize});
  io::preprocess_imagenet(image, kSize, kSize, want.data<float>());
  for (ChannelOrder order : {ChannelOrder::kRgb, ChannelOrder::kBgr}) {
    std::vector<std::uint8_t> crop;
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x)
        for (int c = 0; c < 3; ++c) {
          const int byte = order == ChannelOrder::kBgr ? 2 - c : c;
          crop.push_back(image.rgb[((y + kTop) * kFull + x + kTop) * 3 + byte]);
        }
    const std::size_t count = static_cast<std::size_t>(want.element_count());
    cuda::Stream stream;
    const DeviceImages src = upload_bytes(crop, 0);
    const cuda::DeviceBuffer dst = testing::poisoned(count, StorageType::kFloat32);
    cuda::kernels::images_to_nchw(src.data(), dst.as<float>(), {1, kSize, kSize, order},
                                  Normalization{}, stream.get());
    EXPECT_TRUE(testing::close(testing::download(dst, count, stream), want, StorageType::kFloat32,
                               cat("224x224 crop of a 256x256 image, ", order_name(order)), 1e-5f));
  }
}

struct StorageCase {
  ImageBatchShape shape;
  StorageType type;
  std::int64_t c_pad = 4;
  std::int64_t src_offset = 0;
};

std::string describe(const StorageCase& c) {
  return cat("n=", c.shape.n, " h=", c.shape.h, " w=", c.shape.w, " ", order_name(c.shape.order),
             " c_pad=", c.c_pad, " src_offset=", c.src_offset, " ", testing::type_name(c.type));
}

void PrintTo(const StorageCase& c, std::ostream* os) {
  *os << "n" << c.shape.n << "_" << c.shape.h << "x" << c.shape.w << "_"
      << order_name(c.shape.order) << "_cpad" << c.c_pad << "_off" << c.src_offset << "_"
      << testing::type_name(c.type);
}

class PreprocessStorage : public ::testing::TestWithParam<StorageCase> {};

TEST_P(PreprocessStorage, MatchesTheCpuNormalizationWithZeroPadding) {
  ANVIL_REQUIRE_GPU();
  const StorageCase& sc = GetParam();
  const ImageBatchShape& s = sc.shape;
  const std::int64_t pixels = s.n * s.h * s.w;
  const std::vector<std::uint8_t> images = random_pixels(pixels * 3, 9);
  const Tensor ref = reference_nchw(images, s, Normalization{});
  Tensor want(DType::kFloat32, {s.n, s.h, s.w, sc.c_pad});  // zeros in the padding
  for (std::int64_t px = 0; px < pixels; ++px)
    for (int c = 0; c < 3; ++c) {
      const std::int64_t n = px / (s.h * s.w), p = px % (s.h * s.w);
      want.data<float>()[px * sc.c_pad + c] = ref.data<float>()[(n * 3 + c) * s.h * s.w + p];
    }
  const std::size_t count = static_cast<std::size_t>(want.element_count());
  cuda::Stream stream;
  const DeviceImages src = upload_bytes(images, sc.src_offset);
  const cuda::DeviceBuffer dst = testing::poisoned(count, sc.type);
  cuda::kernels::images_to_engine_storage(src.data(), dst.data(), sc.type, sc.c_pad, s,
                                          Normalization{}, stream.get());
  stream.synchronize();
  const std::vector<float> got = stored_values(dst.data(), count, sc.type);
  EXPECT_TRUE(testing::close(got, want, sc.type, describe(sc), 1e-5f));
  std::size_t wrong = 0;
  for (std::int64_t px = 0; px < pixels; ++px)
    for (std::int64_t c = 3; c < sc.c_pad; ++c) {
      const float g = got[static_cast<std::size_t>(px * sc.c_pad + c)], zero = 0.0f;
      // Bitwise: +0, not -0, NaN or garbage.
      if (std::memcmp(&g, &zero, sizeof(float)) != 0 && wrong++ < 5)
        ADD_FAILURE() << describe(sc) << ": padding channel " << c << " of pixel " << px << " is "
                      << g;
    }
  EXPECT_EQ(wrong, 0u) << describe(sc);

  // What the Pipeline replaces: images_to_nchw, then the engine's reformat_in.
  const cuda::DeviceBuffer nchw = testing::poisoned(count, StorageType::kFloat32);
  cuda::kernels::images_to_nchw(src.data(), nchw.as<float>(), s, Normalization{}, stream.get());
  const cuda::DeviceBuffer two_pass = testing::poisoned(count, sc.type);
  cuda::kernels::nchw_to_nhwc(nchw.as<float>(), two_pass.data(), sc.type,
                              {s.n, 3, s.h, s.w, sc.c_pad}, stream.get());
  stream.synchronize();
  const std::vector<float> want_bits = stored_values(two_pass.data(), count, sc.type);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (std::memcmp(&got[i], &want_bits[i], sizeof(float)) != 0 && differ++ < 5)
      ADD_FAILURE() << describe(sc) << ": element " << i << " is " << got[i]
                    << ", images_to_nchw + nchw_to_nhwc give " << want_bits[i];
  EXPECT_EQ(differ, 0u) << describe(sc) << ": not bit for bit the two-pass result";
}

std::vector<StorageCase> storage_cases() {
  std::vector<StorageCase> cases;
  for (StorageType type : {StorageType::kFloat32, StorageType::kFloat16}) {
    cases.push_back({{3, 224, 224, ChannelOrder::kRgb}, type});
    cases.push_back({{3, 224, 224, ChannelOrder::kBgr}, type, 4, 3});
    // 442 pixels: the last 4-pixel group is partial.
    cases.push_back({{2, 17, 13, ChannelOrder::kRgb}, type});
    cases.push_back({{2, 17, 13, ChannelOrder::kBgr}, type});
    cases.push_back({{2, 17, 13, ChannelOrder::kRgb}, type, 4, 1});
    cases.push_back({{1, 1, 1, ChannelOrder::kRgb}, type});
    cases.push_back({{1, 1, 1, ChannelOrder::kBgr}, type, 4, 1});
    cases.push_back({{2, 5, 7, ChannelOrder::kBgr}, type, 8});
    cases.push_back({{1, 9, 4, ChannelOrder::kRgb}, type, 8, 2});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Kernels, PreprocessStorage, ::testing::ValuesIn(storage_cases()));

// Planar (NCHW) sources: the same images as planes (plane k = byte k of each
// packed pixel, so blue first for kBgr) must give, bit for bit, what the
// packed images give through the same launcher, to FP32 NCHW and to storage,
// and stay within the reference's FP32 bound. h * w % 4 == 0 with an aligned
// source takes the 4-pixel path (one 4-byte load per plane); the rest, odd
// offsets and a batch's partial last group, the pixel-by-pixel one.
struct PlanarCase {
  ImageBatchShape shape;  // layout is set by the test
  std::int64_t src_offset = 0;
};

void PrintTo(const PlanarCase& c, std::ostream* os) {
  *os << "n" << c.shape.n << "_" << c.shape.h << "x" << c.shape.w << "_"
      << order_name(c.shape.order) << "_off" << c.src_offset;
}

std::string describe(const PlanarCase& c, const char* to) {
  return cat("planar source n=", c.shape.n, " h=", c.shape.h, " w=", c.shape.w, " ",
             order_name(c.shape.order), " src_offset=", c.src_offset, " -> ", to);
}

std::vector<std::uint8_t> packed_to_planes(const std::vector<std::uint8_t>& packed,
                                           const ImageBatchShape& s) {
  const std::int64_t hw = s.h * s.w;
  std::vector<std::uint8_t> planes(packed.size());
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t k = 0; k < 3; ++k)
        planes[static_cast<std::size_t>((n * 3 + k) * hw + p)] =
            packed[static_cast<std::size_t>((n * hw + p) * 3 + k)];
  return planes;
}

// Counts elements whose bits differ, reporting the first few and the worst.
std::size_t bit_differences(const std::vector<float>& got, const std::vector<float>& want,
                            const std::string& what) {
  std::size_t differ = 0, worst = 0;
  float worst_diff = -1.0f;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
    if (differ++ < 3)
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the packed source gives "
                    << want[i];
    const float d = std::fabs(got[i] - want[i]);
    if (!(d <= worst_diff)) worst_diff = d, worst = i;
  }
  if (differ > 0)
    ADD_FAILURE() << what << ": " << differ << " of " << got.size()
                  << " elements differ from the packed source's; worst at " << worst << ": "
                  << got[worst] << " vs " << want[worst];
  return differ;
}

class PreprocessPlanar : public ::testing::TestWithParam<PlanarCase> {};

TEST_P(PreprocessPlanar, GivesWhatThePackedSourceGivesBitForBit) {
  ANVIL_REQUIRE_GPU();
  const PlanarCase& pc = GetParam();
  ImageBatchShape packed_shape = pc.shape;
  packed_shape.layout = cuda::kernels::PixelLayout::kNhwc;
  ImageBatchShape planar_shape = pc.shape;
  planar_shape.layout = cuda::kernels::PixelLayout::kNchw;
  const std::int64_t pixels = pc.shape.n * pc.shape.h * pc.shape.w;
  const std::vector<std::uint8_t> packed = random_pixels(pixels * 3, 21);
  const Normalization norm = custom_normalization();
  cuda::Stream stream;
  const DeviceImages packed_src = upload_bytes(packed, 0);
  const DeviceImages planar_src = upload_bytes(packed_to_planes(packed, pc.shape), pc.src_offset);

  {  // -> FP32 NCHW, also against the CPU reference.
    const std::size_t count = static_cast<std::size_t>(pixels * 3);
    const cuda::DeviceBuffer want = testing::poisoned(count, StorageType::kFloat32);
    const cuda::DeviceBuffer got = testing::poisoned(count, StorageType::kFloat32);
    cuda::kernels::images_to_nchw(packed_src.data(), want.as<float>(), packed_shape, norm,
                                  stream.get());
    cuda::kernels::images_to_nchw(planar_src.data(), got.as<float>(), planar_shape, norm,
                                  stream.get());
    stream.synchronize();
    const std::vector<float> g = stored_values(got.data(), count, StorageType::kFloat32);
    const std::string what = describe(pc, "FP32 NCHW");
    EXPECT_EQ(bit_differences(g, stored_values(want.data(), count, StorageType::kFloat32), what),
              0u);
    EXPECT_TRUE(testing::close(g, reference_nchw(packed, packed_shape, norm), StorageType::kFloat32,
                               what, 1e-5f));
  }
  for (StorageType type : {StorageType::kFloat32, StorageType::kFloat16})
    for (std::int64_t c_pad : {4, 8}) {
      const std::size_t count = static_cast<std::size_t>(pixels * c_pad);
      const cuda::DeviceBuffer want = testing::poisoned(count, type);
      const cuda::DeviceBuffer got = testing::poisoned(count, type);
      cuda::kernels::images_to_engine_storage(packed_src.data(), want.data(), type, c_pad,
                                              packed_shape, norm, stream.get());
      cuda::kernels::images_to_engine_storage(planar_src.data(), got.data(), type, c_pad,
                                              planar_shape, norm, stream.get());
      stream.synchronize();
      EXPECT_EQ(bit_differences(
                    stored_values(got.data(), count, type), stored_values(want.data(), count, type),
                    describe(pc, cat(testing::type_name(type), " storage, c_pad ", c_pad).c_str())),
                0u);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, PreprocessPlanar,
    ::testing::Values(PlanarCase{{3, 224, 224, ChannelOrder::kRgb}},
                      PlanarCase{{3, 224, 224, ChannelOrder::kBgr}},
                      PlanarCase{{2, 8, 6, ChannelOrder::kRgb}},     // 4-pixel groups
                      PlanarCase{{2, 8, 6, ChannelOrder::kBgr}, 1},  // unaligned: by pixel
                      PlanarCase{{2, 17, 13, ChannelOrder::kRgb}},   // hw % 4 != 0
                      PlanarCase{{2, 17, 13, ChannelOrder::kBgr}, 3},
                      PlanarCase{{1, 1, 1, ChannelOrder::kRgb}},
                      PlanarCase{{5, 3, 5, ChannelOrder::kBgr}, 2},
                      PlanarCase{{3, 2, 2, ChannelOrder::kRgb}}));  // hw = 4: one group an image

// The Pipeline will enqueue it inside the engine's CUDA graph.
TEST(PreprocessStorage, RunsInsideACudaGraph) {
  ANVIL_REQUIRE_GPU();
  const ImageBatchShape s{2, 17, 13, ChannelOrder::kBgr};
  const std::size_t count = static_cast<std::size_t>(s.n * s.h * s.w * 4);
  const std::vector<std::uint8_t> images = random_pixels(s.n * s.h * s.w * 3, 13);
  cuda::Stream stream;
  const DeviceImages src = upload_bytes(images, 0);
  const cuda::DeviceBuffer direct = testing::poisoned(count, StorageType::kFloat16);
  const cuda::DeviceBuffer graphed = testing::poisoned(count, StorageType::kFloat16);
  cuda::kernels::images_to_engine_storage(src.data(), direct.data(), StorageType::kFloat16, 4, s,
                                          Normalization{}, stream.get());
  stream.synchronize();

  cudaGraph_t graph = nullptr;
  ANVIL_GPU_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  cuda::kernels::images_to_engine_storage(src.data(), graphed.data(), StorageType::kFloat16, 4, s,
                                          Normalization{}, stream.get());
  ANVIL_GPU_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  cudaGraphExec_t exec = nullptr;
  ANVIL_GPU_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  ANVIL_GPU_CHECK(cudaGraphLaunch(exec, stream.get()));
  stream.synchronize();
  ANVIL_GPU_CHECK(cudaGraphExecDestroy(exec));
  ANVIL_GPU_CHECK(cudaGraphDestroy(graph));
  const std::vector<float> want = stored_values(direct.data(), count, StorageType::kFloat16);
  const std::vector<float> got = stored_values(graphed.data(), count, StorageType::kFloat16);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), count * sizeof(float)), 0)
      << "the graph's output differs from the direct launch's";
}

std::optional<ErrorKind> kind_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

TEST(PreprocessErrors, BadArgumentsAreInvalidArgumentErrors) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  const cuda::DeviceBuffer buffer(1024);
  const auto* src = buffer.as<std::uint8_t>();
  void* dst = buffer.data();
  const ImageBatchShape ok{1, 2, 2};
  const auto nchw = [&](const ImageBatchShape& s, const Normalization& norm) {
    return kind_of([&] {
      cuda::kernels::images_to_nchw(src, static_cast<float*>(dst), s, norm, stream.get());
    });
  };
  const auto storage = [&](std::int64_t c_pad, const ImageBatchShape& s, const Normalization& norm,
                           void* to) {
    return kind_of([&] {
      cuda::kernels::images_to_engine_storage(src, to, StorageType::kFloat16, c_pad, s, norm,
                                              stream.get());
    });
  };
  Normalization zero_std, nan_mean;
  zero_std.std[1] = 0.0f;
  nan_mean.mean[2] = NAN;
  const std::optional<ErrorKind> bad = ErrorKind::kInvalidArgument;
  EXPECT_EQ(nchw({-1, 2, 2}, {}), bad) << "negative batch";
  EXPECT_EQ(nchw({1, -2, 2}, {}), bad) << "negative height";
  EXPECT_EQ(nchw({1 << 30, 1 << 30, 1 << 30}, {}), bad) << "overflowing pixel count";
  EXPECT_EQ(nchw(ok, zero_std), bad) << "std 0";
  EXPECT_EQ(nchw(ok, nan_mean), bad) << "NaN mean";
  EXPECT_EQ(kind_of([&] {
              cuda::kernels::images_to_nchw(nullptr, static_cast<float*>(dst), ok, {},
                                            stream.get());
            }),
            bad)
      << "null source";
  EXPECT_EQ(storage(3, ok, {}, dst), bad) << "c_pad 3";
  EXPECT_EQ(storage(5, ok, {}, dst), bad) << "c_pad 5";
  EXPECT_EQ(storage(4, ok, {}, static_cast<char*>(dst) + 8), bad) << "destination not 16-aligned";
  EXPECT_EQ(storage(4, ok, {}, nullptr), bad) << "null destination";
  EXPECT_EQ(storage(4, ok, zero_std, dst), bad) << "std 0";
  // An empty batch is nothing to do, not an error.
  EXPECT_EQ(storage(4, {0, 224, 224}, {}, dst), std::nullopt);
  EXPECT_EQ(nchw({2, 0, 5}, {}), std::nullopt);
  stream.synchronize();
}

}  // namespace
}  // namespace anvil
