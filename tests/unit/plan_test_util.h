// A small, valid plan (two layers, three tensors, one profile, weights) shared
// by the plan tests and the plan fuzzer's seed corpus.
#pragma once

#include <cstddef>

#include "plan/plan.h"

namespace anvil::testing {

inline plan::TargetInfo h100_target() {
  return {.cc_major = 9,
          .cc_minor = 0,
          .gpu_name = "NVIDIA H100 80GB HBM3",
          .cuda_runtime_version = 13000,
          .cudnn_version = 91400,
          .cublaslt_version = 130100};
}

inline plan::Plan small_plan() {
  using plan::WeightRef;
  plan::Plan p;
  p.anvil_version = "0.1.0";
  p.target = h100_target();
  p.options = {.fp16 = true,
               .tf32 = false,
               .workspace_bytes = 64 << 20,
               .disabled_passes = {"fuse_conv_epilogue"}};
  p.tensors = {
      {0, "input", DType::kFloat32, "NCHW", {-1, 3, 8, 8}, 8},
      {1, "conv1_out", DType::kFloat16, "NHWC", {-1, 8, 8, 16}, std::nullopt},
      {2, "logits", DType::kFloat32, "NC", {-1, 10}, std::nullopt},
  };
  p.io = {{"input", 0, true}, {"logits", 2, false}};
  p.profiles = {{.inputs = {{"input", {{1, 3, 8, 8}, {4, 3, 8, 8}, {8, 3, 8, 8}}}}}};
  p.layers = {
      {.name = "conv1",
       .kind = "conv",
       .inputs = {0},
       .outputs = {1},
       .params = R"({"activation":"relu","pads":[1,1,1,1],"strides":[1,1]})",
       .weights = {WeightRef{0, 1728, DType::kFloat32, {16, 3, 3, 3}},
                   WeightRef{1792, 64, DType::kFloat32, {16}}},
       .tactic = R"({"engine_id":7,"knobs":{"SPLIT_K":1,"TILE":3}})"},
      {.name = "fc",
       .kind = "gemm",
       .inputs = {1},
       .outputs = {2},
       .params = R"({"trans_b":true})",
       .weights = {WeightRef{2048, 640, DType::kFloat32, {10, 16}}},
       .tactic = R"({"algo_id":21,"library":"cublaslt"})"},
  };
  p.weights.resize(2688);
  for (std::size_t i = 0; i < p.weights.size(); ++i)
    p.weights[i] = static_cast<std::byte>(i * 7 + 1);
  return p;
}

}  // namespace anvil::testing
