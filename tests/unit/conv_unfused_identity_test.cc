// The unfused conv tactic ("unfused:<cuDNN engine of the conv alone>"):
// identity parsing, and the conv-only shape plus the epilogue activation
// derived from a plan layer's params. Host-side only.
#if ANVIL_HAVE_CUDA

#include <gtest/gtest.h>

#include <cfloat>
#include <nlohmann/json.hpp>

#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/tactic.h"

namespace anvil {
namespace {

using cuda::kernels::Activation;

TEST(ConvUnfusedIdentity, RoundTripsTheEngineConfig) {
  for (const std::string engine : {"eng0:", "eng12:3=1,5=0", "eng7:"}) {
    const std::string identity = runtime::unfused_conv_identity(engine);
    EXPECT_EQ(identity, "unfused:" + engine);
    const std::optional<std::string> back = runtime::unfused_conv_engine(identity);
    ASSERT_TRUE(back.has_value()) << identity;
    EXPECT_EQ(*back, engine);
    // Not mistaken for a cuBLASLt tactic.
    EXPECT_FALSE(runtime::cublaslt_algorithm(identity).has_value()) << identity;
  }
}

TEST(ConvUnfusedIdentity, OtherIdentitiesAreNotUnfused) {
  for (const std::string other :
       {"", "eng12:3=1", "cublaslt:algo=3", "unfused", "Unfused:eng1:", " unfused:eng1:"})
    EXPECT_FALSE(runtime::unfused_conv_engine(other).has_value()) << "'" << other << "'";
  // The prefix alone names an empty engine, which FusedConv::from_identity rejects.
  EXPECT_EQ(runtime::unfused_conv_engine("unfused:"), std::optional<std::string>(""));
  EXPECT_FALSE(runtime::unfused_conv_engine(runtime::cublaslt_conv_identity("x")).has_value());
}

nlohmann::json conv_params(const char* activation, bool bias, bool residual) {
  return {{"c", 13},
          {"c_pad", 16},
          {"k", 21},
          {"k_pad", 24},
          {"r", 3},
          {"s", 3},
          {"in_h", 20},
          {"in_w", 18},
          {"out_h", 10},
          {"out_w", 9},
          {"pad_top", 1},
          {"pad_left", 1},
          {"pad_bottom", 1},
          {"pad_right", 1},
          {"stride_h", 2},
          {"stride_w", 2},
          {"dil_h", 1},
          {"dil_w", 1},
          {"groups", 1},
          {"has_bias", bias},
          {"has_residual", residual},
          {"activation", activation},
          {"alpha", 0.2f},
          {"beta", 0.5f},
          {"clip_min", -FLT_MAX},
          {"clip_max", FLT_MAX}};
}

TEST(ConvUnfusedIdentity, TheConvAloneKeepsTheGeometryAndDropsTheEpilogue) {
  struct Case {
    const char* activation;
    Activation want;
  };
  for (const Case c :
       {Case{"relu", Activation::kRelu}, Case{"leaky_relu", Activation::kLeakyRelu},
        Case{"hard_swish", Activation::kHardSwish}, Case{"none", Activation::kNone}}) {
    SCOPED_TRACE(c.activation);
    runtime::ConvLayerShape layer =
        runtime::conv_layer_shape(conv_params(c.activation, true, true), "conv0", false, false);
    layer.shape.n = 4;
    const runtime::UnfusedConv unfused = runtime::unfused_conv(layer);
    const cuda::ConvShape& s = unfused.conv;
    EXPECT_FALSE(s.has_bias);
    EXPECT_FALSE(s.has_residual);
    EXPECT_EQ(s.act, Activation::kNone);
    EXPECT_EQ(unfused.act, c.want) << "the epilogue must apply the layer's whole activation";
    EXPECT_EQ(s.n, 4);
    EXPECT_EQ(s.c, 16);
    EXPECT_EQ(s.k, 24);
    EXPECT_EQ(s.r, 3);
    EXPECT_EQ(s.stride_h, 2);
    EXPECT_EQ(s.stride_w, 2);
    EXPECT_EQ(s.pad_h, 1);
    EXPECT_EQ(s.out_h(), layer.shape.out_h());
    EXPECT_EQ(s.out_w(), layer.shape.out_w());
    EXPECT_FALSE(s.fp16);
    EXPECT_FALSE(s.allow_tf32) << "the conv alone must keep the no-TF32 promise";
    EXPECT_NO_THROW(cuda::check_fused_conv_shape(s));
  }
}

}  // namespace
}  // namespace anvil

#endif  // ANVIL_HAVE_CUDA
