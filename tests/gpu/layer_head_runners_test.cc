// The head's runners ("global_avg_pool_int8", "gemm", "gemm_output",
// src/runtime/layers/) refuse a corrupt plan whose tensors have the wrong
// dtype, naming the layer, before they touch the GPU: a mismatch would make
// the kernel or cuBLASLt overrun or misread a buffer. Runs without a GPU.
// (That the layers compute right is the engine tests' part: EngineModel,
// EngineQuantized, cublaslt_gemm_test, kernels_pooling_test.)
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "../unit/int8_test_net.h"
#include "anvil/error.h"
#include "builder/lower.h"
#include "plan/plan.h"
#include "runtime/layer_runner.h"

namespace anvil {
namespace {

using builder::testing::int8_options;
using builder::testing::make_net;

// The INT8 test net's plan: ..., conv_int8 (y), global_avg_pool_int8, gemm,
// reformat_out.
plan::Plan head_plan() {
  const builder::testing::Net net = make_net();
  return builder::lower_graph(net.graph, int8_options(net));
}

std::size_t index_of(const plan::Plan& p, const std::string& kind) {
  const auto it = std::find_if(p.layers.begin(), p.layers.end(),
                               [&](const plan::LayerDesc& l) { return l.kind == kind; });
  if (it == p.layers.end()) throw std::runtime_error("no " + kind + " layer");
  return static_cast<std::size_t>(it - p.layers.begin());
}

// The runner's construction from the FP16 plan's layer: its error's message,
// or "constructed".
std::string construct(const plan::Plan& p, std::size_t layer) {
  const plan::LayerDesc& l = p.layers.at(layer);
  const runtime::RunnerFactory factory = runtime::find_runner(l.kind);
  if (!factory) return "no runner for kind '" + l.kind + "'";
  static const std::byte dummy[256] = {};
  runtime::LayerSetup setup{p, l, nlohmann::json::parse(l.params), {}, /*fp16=*/true};
  for (std::size_t i = 0; i < l.weights.size(); ++i)
    setup.weights.push_back(dummy);
  try {
    factory(setup);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    return e.what();
  }
  return "constructed";
}

void expect_corrupt(const plan::Plan& p, std::size_t layer, const std::string& what) {
  const std::string message = construct(p, layer);
  EXPECT_NE(message.find("a corrupt plan"), std::string::npos) << what << ": " << message;
  EXPECT_NE(message.find(p.layers[layer].name), std::string::npos) << what << ": " << message;
}

TEST(HeadRunners, AnInt8PoolOnTensorsOfOtherDtypesIsACorruptPlan) {
  const plan::Plan base = head_plan();
  const std::size_t pool = index_of(base, "global_avg_pool_int8");
  EXPECT_EQ(construct(base, pool), "constructed");
  plan::Plan p = base;
  p.tensors.at(static_cast<std::size_t>(p.layers[pool].inputs[0])).dtype = DType::kFloat16;
  expect_corrupt(p, pool, "an FP16 input");
  p = base;
  p.tensors.at(static_cast<std::size_t>(p.layers[pool].outputs[0])).dtype = DType::kFloat32;
  expect_corrupt(p, pool, "an FP32 output");
  p = base;
  p.layers[pool].inputs.push_back(p.layers[pool].inputs[0]);
  EXPECT_NE(construct(p, pool).find("one input and one output"), std::string::npos);
}

TEST(HeadRunners, AGemmWritingAnotherDtypeThanItsKindSaysIsACorruptPlan) {
  const plan::Plan base = head_plan();
  const std::size_t gemm = index_of(base, "gemm");
  plan::Plan p = base;
  // A plain gemm of an FP16 plan writes FP16: an FP32 tensor would be read
  // as half the values it holds.
  p.tensors.at(static_cast<std::size_t>(p.layers[gemm].outputs[0])).dtype = DType::kFloat32;
  expect_corrupt(p, gemm, "gemm writing FP32");
  // A gemm_output writes FP32 (four bytes a value) into an FP16 tensor: an overrun.
  p = base;
  p.layers[gemm].kind = "gemm_output";
  expect_corrupt(p, gemm, "gemm_output writing FP16");
}

}  // namespace
}  // namespace anvil
