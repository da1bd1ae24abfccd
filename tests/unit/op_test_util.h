// One ir::Node with its values, run through the op registry (ops::run_node,
// ops::infer_node, macs) the way the runtime and importer call it; for op tests.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "ops/op.h"

namespace anvil::testing {

class OpNode {
 public:
  OpNode(std::string op_type, int opset, std::size_t n_inputs, std::size_t n_outputs = 1) {
    node_.op_type = std::move(op_type);
    node_.name = "n";
    node_.opset = opset;
    for (std::size_t i = 0; i < n_inputs; ++i) {
      node_.inputs.push_back(&values_.emplace_back());
      node_.inputs.back()->name = cat("in", i);
    }
    for (std::size_t i = 0; i < n_outputs; ++i)
      node_.outputs.push_back(&values_.emplace_back());
  }

  OpNode& attr(const std::string& name, ir::AttributeValue value) {
    node_.attributes.set(name, std::move(value));
    return *this;
  }

  const ir::Node& node() const { return node_; }

  // Runs with concrete inputs (null for an omitted optional input).
  std::vector<Tensor> run(const std::vector<const Tensor*>& inputs) const {
    return ops::run_node(node_, inputs);
  }

  // Output 0 of run(); the second form is for a node with one input.
  Tensor run_one(const std::vector<const Tensor*>& inputs) const { return run(inputs).at(0); }
  Tensor run_one(const Tensor& input) const { return run_one({&input}); }

  // The first output's inferred info, from shapes and the known inputs.
  ops::TensorInfo infer(std::vector<ops::TensorInfo> inputs,
                        std::vector<const Tensor*> constants) const {
    constants.resize(inputs.size(), nullptr);
    return ops::infer_node(node_, std::move(inputs), std::move(constants))[0];
  }

  // The kind of error a run throws, or nothing.
  std::optional<ErrorKind> run_error(const std::vector<const Tensor*>& inputs) const {
    try {
      run(inputs);
    } catch (const Error& e) {
      return e.kind();
    }
    return std::nullopt;
  }

  // The op's multiply-accumulate count for float32 inputs of these extents.
  std::int64_t macs(const std::vector<Extents>& inputs) const {
    std::vector<ops::TensorInfo> infos;
    for (const Extents& e : inputs)
      infos.push_back({DType::kFloat32, ir::Shape::of(e)});
    const ops::InferContext ctx(node_, infos, std::vector<const Tensor*>(inputs.size()));
    return ops::find_op(node_.op_type)->op->macs(ctx);
  }

 private:
  ir::Node node_;
  std::deque<ir::Value> values_;  // stable addresses
};

template <typename T = float>
std::vector<T> values_of(const Tensor& t) {
  const auto v = t.values<T>();
  return {v.begin(), v.end()};
}

inline Tensor i64(Extents extents, std::vector<std::int64_t> v) {
  return Tensor::from<std::int64_t>(std::move(extents), std::span<const std::int64_t>(v));
}

inline Tensor f32(Extents extents, std::vector<float> v) {
  return Tensor::from<float>(std::move(extents), std::span<const float>(v));
}

// 0, 1, 2, ... as float32 with the given extents.
inline Tensor iota_f32(Extents extents) {
  Tensor t(DType::kFloat32, std::move(extents));
  for (std::int64_t i = 0; i < t.element_count(); ++i)
    t.data<float>()[i] = static_cast<float>(i);
  return t;
}

inline ir::Shape shape(std::vector<ir::Dim> dims) {
  return ir::Shape(std::move(dims));
}
inline ir::Dim k(std::int64_t n) {
  return ir::Dim::known(n);
}
inline ir::Dim sym(const std::string& name) {
  return ir::Dim::named(name);
}

}  // namespace anvil::testing
