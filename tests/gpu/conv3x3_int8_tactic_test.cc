// Which conv_int8 layers our INT8 3x3 kernels take, and which kernel each
// tactic identity names (runtime/layers/tactic.h): what the autotuner times
// and the runtime runs for a plan's "anvil:..." identity. Runs without a GPU.
// (That the kernels compute right is kernels_conv3x3_int8_test.cc's part.)
#include <gtest/gtest.h>

#include <optional>

#include "cuda/cudnn_quantized_conv.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "runtime/layers/tactic.h"

namespace anvil {
namespace {

using cuda::kernels::Conv3x3Int8Kernel;

// ResNet-18's layer1 conv with its residual at batch 32.
cuda::QuantizedConvShape layer1() {
  return {.n = 32,
          .h = 56,
          .w = 56,
          .c = 64,
          .k = 64,
          .r = 3,
          .s = 3,
          .pad_h = 1,
          .pad_w = 1,
          .has_bias = true,
          .has_residual = true,
          .relu = true,
          .residual_scale = 0.5f};
}

TEST(Conv3x3Int8Tactic, EachIdentityNamesItsKernel) {
  for (const std::string_view id : runtime::kConv3x3Int8Identities)
    EXPECT_TRUE(runtime::is_conv3x3_int8_identity(id)) << id;
  EXPECT_FALSE(runtime::is_conv3x3_int8_identity("i32:eng4:24=26"));
  EXPECT_FALSE(runtime::is_conv3x3_int8_identity("anvil:conv3x3_int8_wgmma"));

  const std::optional<cuda::kernels::Conv3x3Int8Shape> mma =
      runtime::conv3x3_int8_shape(layer1(), runtime::kConv3x3Int8Identity);
  ASSERT_TRUE(mma);
  EXPECT_EQ(mma->kernel, Conv3x3Int8Kernel::kMmaSync);
  EXPECT_EQ(mma->n, 32);
  EXPECT_TRUE(mma->has_residual);
  EXPECT_FLOAT_EQ(mma->residual_scale, 0.5f);

  const std::optional<cuda::kernels::Conv3x3Int8Shape> wgmma =
      runtime::conv3x3_int8_shape(layer1(), runtime::kConv3x3Int8WgmmaIdentity);
  ASSERT_TRUE(wgmma);
  EXPECT_EQ(wgmma->kernel, Conv3x3Int8Kernel::kWgmmaFilterInRegisters);
  EXPECT_EQ(wgmma->wgmma_parts, 4);
  EXPECT_EQ(wgmma->h, 56);
  EXPECT_TRUE(wgmma->relu);

  // Not ours: a cuDNN identity, or a layer our kernels do not compute.
  EXPECT_FALSE(runtime::conv3x3_int8_shape(layer1(), "i32:eng4:24=26"));
  for (const std::string_view id : runtime::kConv3x3Int8Identities) {
    cuda::QuantizedConvShape s = layer1();
    s.k = 128;
    EXPECT_FALSE(runtime::conv3x3_int8_shape(s, id)) << id;
    s = layer1();
    s.stride_h = s.stride_w = 2;
    EXPECT_FALSE(runtime::conv3x3_int8_shape(s, id)) << id;
    s = layer1();
    s.element = DType::kFloat8E4M3;
    EXPECT_FALSE(runtime::conv3x3_int8_shape(s, id)) << id;
  }
}

}  // namespace
}  // namespace anvil
