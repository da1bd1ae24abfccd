// make_variant_pack's checks (src/cuda/cudnn_engine.h), which every cuDNN
// conv wrapper's bind() goes through: a null tensor or a missing workspace
// is an invalid-argument error naming the layer, the tensor and the plan,
// thrown before cuDNN is called (so this runs without a GPU).
#if ANVIL_HAVE_CUDA

#include <gtest/gtest.h>

#include <string>

#include "anvil/error.h"
#include "cuda/cudnn_engine.h"

namespace anvil {
namespace {

using cuda::BoundTensor;
using cuda::make_variant_pack;

// The message of the kInvalidArgument error `call` throws, or a failure.
template <typename Call>
::testing::AssertionResult invalid_argument(Call call, std::string& message) {
  try {
    call();
  } catch (const Error& e) {
    message = e.what();
    if (e.kind() == ErrorKind::kInvalidArgument) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "error kind '" << to_string(e.kind()) << "': " << message;
  }
  return ::testing::AssertionFailure() << "no error";
}

TEST(CudnnVariantPack, ANullTensorIsNamedWithTheLayerAndThePlan) {
  int x = 0, y = 0;
  const BoundTensor tensors[] = {{1, &x, "x"}, {2, nullptr, "w"}, {6, &y, "y"}};
  std::string message;
  ASSERT_TRUE(invalid_argument(
      [&] { make_variant_pack(tensors, &x, 0, "conv 3x3 64->64", "i32:eng4:24=1"); }, message));
  for (const char* part : {"conv 3x3 64->64", "null pointer for its w", "uid 2", "i32:eng4:24=1"})
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

TEST(CudnnVariantPack, AMissingWorkspaceIsNamedWithItsSize) {
  int x = 0;
  const BoundTensor tensors[] = {{1, &x, "x"}};
  std::string message;
  ASSERT_TRUE(invalid_argument(
      [&] { make_variant_pack(tensors, nullptr, 4096, "conv 1x1", "eng0"); }, message));
  for (const char* part : {"conv 1x1", "eng0", "4096 bytes of workspace", "null"})
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

}  // namespace
}  // namespace anvil

#endif  // ANVIL_HAVE_CUDA
