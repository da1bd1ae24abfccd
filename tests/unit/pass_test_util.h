// Shared by the pass tests (tests/unit/pass_*_test.cc): build a small graph in
// code, run it with the reference runtime before and after passes on seeded
// random input, compare outputs and count nodes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/infer_shapes.h"
#include "passes/pass_manager.h"
#include "passes/passes.h"
#include "reference/reference_runtime.h"

namespace anvil::passes::testing {

inline Tensor random_tensor(const Extents& extents, std::mt19937& rng, float scale = 1.0f) {
  Tensor t(DType::kFloat32, extents);
  std::normal_distribution<float> normal(0.0f, scale);
  for (std::int64_t i = 0; i < t.element_count(); ++i)
    t.data<float>()[i] = normal(rng);
  return t;
}

// Builds an ir::Graph node by node; weights come from a seeded generator so
// that building the same graph twice gives the same weights.
class GraphBuilder {
 public:
  ir::Graph graph;

  GraphBuilder() { graph.opset = kOpset; }

  ir::Value* input(const std::string& name, const ir::Shape& shape) {
    ir::Value* v = graph.add_value(name);
    v->dtype = DType::kFloat32;
    v->shape = shape;
    graph.inputs.push_back(v);
    return v;
  }
  ir::Value* input(const std::string& name, const Extents& extents) {
    return input(name, ir::Shape::of(extents));
  }
  ir::Value* constant(const std::string& name, Tensor data) {
    return graph.add_constant(name, std::move(data));
  }
  ir::Value* weight(const std::string& name, const Extents& extents, float scale = 0.5f) {
    return constant(name, random_tensor(extents, rng_, scale));
  }
  // Positive entries, for BatchNormalization's scale and variance.
  ir::Value* positive(const std::string& name, std::int64_t n) {
    Tensor t(DType::kFloat32, {n});
    std::uniform_real_distribution<float> uniform(0.5f, 1.5f);
    for (std::int64_t i = 0; i < n; ++i)
      t.data<float>()[i] = uniform(rng_);
    return constant(name, std::move(t));
  }
  ir::Value* scalar(const std::string& name, float value) {
    return constant(name, Tensor::from<float>({}, {value}));
  }

  // Adds a node of the default domain and returns its first output.
  ir::Value* node(const std::string& op_type, std::vector<ir::Value*> inputs,
                  ir::Attributes attributes = {}, int output_count = 1) {
    auto n = std::make_unique<ir::Node>();
    n->name = op_type + "_" + std::to_string(graph.nodes().size());
    n->op_type = op_type;
    n->opset = kOpset;
    n->inputs = std::move(inputs);
    n->attributes = std::move(attributes);
    for (int i = 0; i < output_count; ++i)
      n->outputs.push_back(graph.add_value(n->name + "_out" + std::to_string(i)));
    return graph.add_node(std::move(n))->outputs[0];
  }

  ir::Value* conv(ir::Value* x, std::int64_t in, std::int64_t out, std::int64_t kernel,
                  bool bias = false, std::int64_t group = 1, std::int64_t stride = 1) {
    const std::int64_t pad = kernel / 2;
    std::vector<ir::Value*> inputs{x, weight("w", {out, in / group, kernel, kernel}, 0.3f)};
    if (bias) inputs.push_back(weight("b", {out}));
    ir::Attributes attrs;
    attrs.set("kernel_shape", std::vector<std::int64_t>{kernel, kernel});
    attrs.set("pads", std::vector<std::int64_t>{pad, pad, pad, pad});
    attrs.set("strides", std::vector<std::int64_t>{stride, stride});
    attrs.set("group", group);
    return node("Conv", std::move(inputs), std::move(attrs));
  }

  ir::Value* batch_norm(ir::Value* x, std::int64_t channels) {
    ir::Attributes attrs;
    attrs.set("epsilon", 1e-5f);
    return node("BatchNormalization",
                {x, positive("scale", channels), weight("bias", {channels}),
                 weight("mean", {channels}), positive("var", channels)},
                std::move(attrs));
  }

  void output(ir::Value* v) { graph.outputs.push_back(v); }

  // Sorts and infers shapes as the importer does.
  ir::Graph finish() {
    graph.sort_topologically();
    ops::infer_shapes(graph);
    return std::move(graph);
  }

  static constexpr int kOpset = 17;

 private:
  std::mt19937 rng_{1234};
};

using BuildFn = std::function<void(GraphBuilder&)>;

inline ir::Graph build(const BuildFn& fn) {
  GraphBuilder b;
  fn(b);
  return b.finish();
}

// Node counts by op type ("Conv", "FusedConv", ...).
inline std::map<std::string, int> op_counts(const ir::Graph& graph) {
  std::map<std::string, int> counts;
  for (const auto& node : graph.nodes())
    ++counts[node->op_type];
  return counts;
}

inline int count_of(const ir::Graph& graph, const std::string& op_type) {
  auto counts = op_counts(graph);
  auto it = counts.find(op_type);
  return it == counts.end() ? 0 : it->second;
}

// Seeded random values for every graph input (symbolic dims get size 2).
inline std::map<std::string, Tensor> random_inputs(const ir::Graph& graph, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::map<std::string, Tensor> inputs;
  for (const ir::Value* in : graph.inputs) {
    Extents extents;
    for (const ir::Dim& d : in->shape.dims())
      extents.push_back(d.is_known() ? d.size : 2);
    inputs[in->name] = random_tensor(extents, rng);
  }
  return inputs;
}

inline std::vector<Tensor> run_graph(const ir::Graph& graph,
                                     const std::map<std::string, Tensor>& inputs) {
  return reference::ReferenceRuntime(graph).run(inputs);
}

// Every element within rtol * |expected| + atol (both 0: bit-identical).
inline void expect_close(const std::vector<Tensor>& expected, const std::vector<Tensor>& actual,
                         float rtol, float atol) {
  ASSERT_EQ(expected.size(), actual.size());
  for (std::size_t o = 0; o < expected.size(); ++o) {
    ASSERT_EQ(expected[o].extents(), actual[o].extents()) << "output " << o;
    ASSERT_EQ(expected[o].dtype(), actual[o].dtype()) << "output " << o;
    if (expected[o].dtype() != DType::kFloat32) {
      EXPECT_TRUE(std::equal(expected[o].bytes(), expected[o].bytes() + expected[o].byte_size(),
                             actual[o].bytes(), actual[o].bytes() + actual[o].byte_size()))
          << "output " << o;
      continue;
    }
    const auto e = expected[o].values<float>();
    const auto a = actual[o].values<float>();
    int reported = 0;
    for (std::size_t i = 0; i < e.size() && reported < 5; ++i) {
      if (std::fabs(e[i] - a[i]) <= rtol * std::fabs(e[i]) + atol) continue;
      ADD_FAILURE() << "output " << o << " element " << i << ": expected " << e[i] << ", got "
                    << a[i];
      ++reported;
    }
  }
}

// Runs `build` once unoptimized and once through `manager`; checks the outputs
// agree and returns the optimized graph for node counting.
inline ir::Graph expect_same_outputs(const BuildFn& fn, const PassManager& manager, float rtol,
                                     float atol) {
  ir::Graph reference = build(fn);
  ir::Graph optimized = build(fn);
  manager.run(optimized);
  const auto inputs = random_inputs(reference);
  expect_close(run_graph(reference, inputs), run_graph(optimized, inputs), rtol, atol);
  return optimized;
}

// A pipeline of the one pass `make`.
inline PassManager only(std::unique_ptr<Pass> pass) {
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(std::move(pass));
  return PassManager(std::move(passes));
}

}  // namespace anvil::passes::testing
