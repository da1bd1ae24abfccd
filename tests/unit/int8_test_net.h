// A small network lowered with INT8 scales, shared by the INT8 and FP8
// lowering and the fallback tests (with a few plan helpers): conv1 reads the image (FP16), conv2
// and conv3 run in INT8, conv3 adds conv1's output as its residual.
#pragma once

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "builder/lower.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"

namespace anvil::builder::testing {

// x -> conv1 + relu = a -> conv2 + relu = b -> conv3 + a, relu = y -> GAP ->
// Flatten -> Gemm, optimized (each conv fused with its epilogue); a, b and y
// have `channels` channels (8; the FP8 tests use 16, FP8's channel multiple).
struct Net {
  ir::Graph graph;
  std::string x, a, b, y;           // value names
  std::string conv1, conv2, conv3;  // node names after fusion
  std::vector<float> conv2_w;       // ONNX [channels, channels, 3, 3]
};

inline Net make_net(std::int64_t channels = 8) {
  passes::testing::GraphBuilder g;
  ir::Value* x = g.input("x", ir::Shape::of(Extents{1, 4, 8, 8}));
  ir::Value* a = g.node("Relu", {g.conv(x, 4, channels, 3, /*bias=*/true)});
  ir::Value* b = g.node("Relu", {g.conv(a, channels, channels, 3, /*bias=*/true)});
  ir::Value* sum = g.node("Add", {g.conv(b, channels, channels, 3, /*bias=*/true), a});
  ir::Value* y = g.node("Relu", {sum});
  ir::Value* pooled = g.node("Flatten", {g.node("GlobalAveragePool", {y})});
  ir::Attributes gemm;
  gemm.set("transB", std::int64_t{1});
  g.output(
      g.node("Gemm", {pooled, g.weight("fc.w", {10, channels}), g.weight("fc.b", {10})}, gemm));
  Net net;
  net.graph = g.finish();
  passes::PassManager().run(net.graph);
  for (const auto& node : net.graph.nodes()) {
    if (node->op_type != "FusedConv") continue;
    const std::string& in = node->input(0)->name;
    if (in == x->name) {
      net.conv1 = node->name;
      net.a = node->outputs[0]->name;
    } else if (node->input(3)) {
      net.conv3 = node->name;
      net.y = node->outputs[0]->name;
    } else {
      net.conv2 = node->name;
      net.b = node->outputs[0]->name;
      const Tensor& w = *node->input(1)->constant;
      net.conv2_w.assign(w.data<float>(), w.data<float>() + w.element_count());
    }
  }
  net.x = x->name;
  return net;
}

// a and y share a scale: conv3 adds a to its INT8 result unscaled.
inline LowerOptions int8_options(const Net& net) {
  LowerOptions o{.fp16 = true, .max_batch = 4};
  o.int8_scales = {{net.x, 0.02f}, {net.a, 0.05f}, {net.b, 0.03f}, {net.y, 0.05f}};
  return o;
}

// The plan's layer kinds in order.
inline std::vector<std::string> kinds(const plan::Plan& p) {
  std::vector<std::string> out;
  for (const plan::LayerDesc& l : p.layers)
    out.push_back(l.kind);
  return out;
}

// The layer named `name` (std::runtime_error if none).
inline const plan::LayerDesc& layer_named(const plan::Plan& p, const std::string& name) {
  const auto it = std::find_if(p.layers.begin(), p.layers.end(),
                               [&](const plan::LayerDesc& l) { return l.name == name; });
  if (it == p.layers.end()) throw std::runtime_error("no layer " + name);
  return *it;
}

// A float32 weight of the plan.
inline std::vector<float> floats(const plan::Plan& p, const plan::WeightRef& ref) {
  std::vector<float> out(static_cast<std::size_t>(ref.bytes) / 4);
  std::memcpy(out.data(), p.weights.data() + ref.offset, static_cast<std::size_t>(ref.bytes));
  return out;
}

}  // namespace anvil::builder::testing
