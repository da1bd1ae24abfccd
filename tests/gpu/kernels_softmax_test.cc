// The row softmax kernel (src/cuda/kernels/softmax.h) against the CPU
// Softmax op (opset 13, last axis), including rows longer than a warp's
// stride, rows shorter than a warp, large logits and an in-place run.
#include <ostream>

#include "../unit/op_test_util.h"
#include "cuda/kernels/softmax.h"
#include "gpu_test.h"
#include "kernels_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::StorageType;

struct SoftmaxCase {
  std::int64_t rows, cols;
  float scale;  // logits in [-scale, scale): large ones would overflow a naive exp
  bool in_place;
};

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const SoftmaxCase& c, std::ostream* os) {
  *os << c.rows << "x" << c.cols << "_scale" << c.scale << (c.in_place ? "_inplace" : "");
}

class SoftmaxRows : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxRows, MatchesTheCpuReference) {
  ANVIL_REQUIRE_GPU();
  const SoftmaxCase& sc = GetParam();
  const std::string what = cat("softmax [", sc.rows, ",", sc.cols, "] logits within +-", sc.scale,
                               sc.in_place ? " in place" : "");
  const Tensor x = testing::random_tensor({sc.rows, sc.cols}, 41, -sc.scale, sc.scale);
  const Tensor want = testing::OpNode("Softmax", 13, 1).run_one(x);
  const std::size_t count = static_cast<std::size_t>(x.element_count());
  cuda::Stream stream;
  const cuda::DeviceBuffer src = testing::upload(x);
  const cuda::DeviceBuffer out = testing::poisoned(count, StorageType::kFloat32);
  const cuda::DeviceBuffer& y = sc.in_place ? src : out;
  cuda::kernels::softmax_rows(src.as<float>(), y.as<float>(), sc.rows, sc.cols, stream.get());
  const std::vector<float> got = testing::download(y, count, stream);
  // Relative to the largest probability: 1e-5 (a sum over up to 4097 terms).
  EXPECT_TRUE(testing::close(got, want, StorageType::kFloat32, what, 1e-5f));
}

INSTANTIATE_TEST_SUITE_P(Kernels, SoftmaxRows,
                         ::testing::Values(SoftmaxCase{5, 1000, 8.0f, false},
                                           SoftmaxCase{1, 1000, 8.0f, true},
                                           SoftmaxCase{3, 17, 4.0f, false},
                                           SoftmaxCase{1, 4097, 4.0f, false},
                                           SoftmaxCase{130, 10, 200.0f, false}));

}  // namespace
}  // namespace anvil
