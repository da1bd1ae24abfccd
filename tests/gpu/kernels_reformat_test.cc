// The layout kernels (src/cuda/kernels/reformat.h): every element lands where
// the NHWC layout says, padding channels are zeros, and the round trip back to
// NCHW (and [N, Cpad] -> [N, C]) gives the input again.
#include <cuda_fp16.h>

#include <cstring>
#include <ostream>

#include "cuda/kernels/reformat.h"
#include "gpu_test.h"
#include "kernels_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::ImageShape;
using cuda::kernels::StorageType;
using testing::random_tensor;

struct ReformatCase {
  ImageShape shape;
  StorageType type;
};

std::string describe(const ReformatCase& c) {
  return cat("n=", c.shape.n, " c=", c.shape.c, " h=", c.shape.h, " w=", c.shape.w,
             " c_pad=", c.shape.c_pad, " ", testing::type_name(c.type));
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const ReformatCase& c, std::ostream* os) {
  *os << c.shape.n << "x" << c.shape.c << "x" << c.shape.h << "x" << c.shape.w << "_cpad"
      << c.shape.c_pad << "_" << testing::type_name(c.type);
}

// What a value becomes once stored as `type`.
float stored(float v, StorageType type) {
  return type == StorageType::kFloat16 ? __half2float(__float2half_rn(v)) : v;
}

// The NHWC buffer read back as floats, whatever the storage type.
std::vector<float> nhwc_values(const cuda::DeviceBuffer& buffer, std::size_t count,
                               StorageType type) {
  std::vector<float> out(count);
  if (type == StorageType::kFloat32) {
    ANVIL_GPU_CHECK(cudaMemcpy(out.data(), buffer.data(), count * 4, cudaMemcpyDeviceToHost));
    return out;
  }
  std::vector<__half> halves(count);
  ANVIL_GPU_CHECK(cudaMemcpy(halves.data(), buffer.data(), count * 2, cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < count; ++i)
    out[i] = __half2float(halves[i]);
  return out;
}

class Reformat : public ::testing::TestWithParam<ReformatCase> {};

TEST_P(Reformat, NchwToPaddedNhwcAndBack) {
  ANVIL_REQUIRE_GPU();
  const ReformatCase& rc = GetParam();
  const ImageShape& s = rc.shape;
  const Tensor x = random_tensor({s.n, s.c, s.h, s.w}, 7);
  const std::size_t nhwc_count = static_cast<std::size_t>(s.n * s.h * s.w * s.c_pad);
  cuda::Stream stream;
  const cuda::DeviceBuffer src = testing::upload(x);
  const cuda::DeviceBuffer nhwc = testing::poisoned(nhwc_count, rc.type);
  cuda::kernels::nchw_to_nhwc(src.as<float>(), nhwc.data(), rc.type, s, stream.get());
  stream.synchronize();

  const std::vector<float> got = nhwc_values(nhwc, nhwc_count, rc.type);
  const float* in = x.data<float>();
  std::size_t wrong = 0;
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t p = 0; p < s.h * s.w; ++p)
      for (std::int64_t ch = 0; ch < s.c_pad; ++ch) {
        const float g = got[static_cast<std::size_t>((n * s.h * s.w + p) * s.c_pad + ch)];
        const float want = ch < s.c ? stored(in[(n * s.c + ch) * s.h * s.w + p], rc.type) : 0.0f;
        // Bitwise: a padding channel must be +0, not NaN or garbage.
        if (std::memcmp(&g, &want, sizeof(float)) != 0 && wrong++ < 5)
          ADD_FAILURE() << describe(rc) << ": NHWC element (n=" << n << ", pixel=" << p
                        << ", c=" << ch << ") got " << g << " want " << want;
      }
  EXPECT_EQ(wrong, 0u) << describe(rc);

  const cuda::DeviceBuffer back =
      testing::poisoned(static_cast<std::size_t>(x.element_count()), StorageType::kFloat32);
  cuda::kernels::nhwc_to_nchw(nhwc.data(), rc.type, back.as<float>(), s, stream.get());
  const std::vector<float> round_trip =
      testing::download(back, static_cast<std::size_t>(x.element_count()), stream);
  Tensor want = x.clone();
  for (std::int64_t i = 0; i < want.element_count(); ++i)
    want.data<float>()[i] = stored(want.data<float>()[i], rc.type);
  EXPECT_TRUE(
      testing::close(round_trip, want, StorageType::kFloat32, describe(rc) + " round trip", 0.0f));
}

std::vector<ReformatCase> reformat_cases() {
  std::vector<ReformatCase> cases;
  for (StorageType type : {StorageType::kFloat32, StorageType::kFloat16})
    for (const ImageShape& s :
         // c_pad 4 (and 8 in FP16) take the one-thread-per-pixel kernel; the rest the tiles.
         {ImageShape{1, 3, 5, 7, 8}, ImageShape{5, 3, 4, 6, 8}, ImageShape{1, 3, 224, 224, 8},
          ImageShape{3, 3, 224, 224, 4}, ImageShape{2, 4, 17, 19, 4}, ImageShape{2, 1, 5, 3, 4},
          ImageShape{2, 5, 9, 10, 8}, ImageShape{1, 17, 9, 11, 24}, ImageShape{5, 17, 7, 7, 24},
          ImageShape{2, 17, 33, 40, 24}, ImageShape{2, 64, 3, 5, 64}, ImageShape{3, 40, 1, 1, 40}})
      cases.push_back({s, type});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Kernels, Reformat, ::testing::ValuesIn(reformat_cases()));

struct UnpadCase {
  std::int64_t rows, c, c_pad;
  StorageType type;
};

void PrintTo(const UnpadCase& c, std::ostream* os) {
  *os << "rows" << c.rows << "_c" << c.c << "_cpad" << c.c_pad << "_" << testing::type_name(c.type);
}

class UnpadRows : public ::testing::TestWithParam<UnpadCase> {};

TEST_P(UnpadRows, DropsThePaddingColumns) {
  ANVIL_REQUIRE_GPU();
  const UnpadCase& uc = GetParam();
  const std::string what = cat("rows=", uc.rows, " c=", uc.c, " c_pad=", uc.c_pad);
  // A padded [rows, c, 1, 1] tensor in NHWC is exactly the [rows, c_pad] matrix.
  const Tensor x = random_tensor({uc.rows, uc.c, 1, 1}, 11);
  cuda::Stream stream;
  const cuda::DeviceBuffer src = testing::upload(x);
  const cuda::DeviceBuffer padded =
      testing::poisoned(static_cast<std::size_t>(uc.rows * uc.c_pad), uc.type);
  const ImageShape shape{uc.rows, uc.c, 1, 1, uc.c_pad};
  cuda::kernels::nchw_to_nhwc(src.as<float>(), padded.data(), uc.type, shape, stream.get());
  const cuda::DeviceBuffer out =
      testing::poisoned(static_cast<std::size_t>(uc.rows * uc.c), StorageType::kFloat32);
  cuda::kernels::unpad_rows(padded.data(), uc.type, out.as<float>(), uc.rows, uc.c, uc.c_pad,
                            stream.get());
  const std::vector<float> got =
      testing::download(out, static_cast<std::size_t>(uc.rows * uc.c), stream);
  Tensor want = x.reshaped({uc.rows, uc.c}).clone();
  for (std::int64_t i = 0; i < want.element_count(); ++i)
    want.data<float>()[i] = stored(want.data<float>()[i], uc.type);
  EXPECT_TRUE(testing::close(got, want, StorageType::kFloat32, what, 0.0f));
}

INSTANTIATE_TEST_SUITE_P(Kernels, UnpadRows,
                         ::testing::Values(UnpadCase{1, 1000, 1000, StorageType::kFloat32},
                                           UnpadCase{5, 1000, 1008, StorageType::kFloat16},
                                           UnpadCase{5, 17, 24, StorageType::kFloat32},
                                           UnpadCase{3, 3, 8, StorageType::kFloat16}));

TEST(ReformatErrors, PaddedCountBelowChannelsIsAnError) {
  ANVIL_REQUIRE_GPU();
  try {
    cuda::kernels::nchw_to_nhwc(nullptr, nullptr, StorageType::kFloat32, {1, 17, 4, 4, 8}, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  }
}

}  // namespace
}  // namespace anvil
