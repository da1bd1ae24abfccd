// The graph IR: values (tensors) produced and consumed by nodes (ops).
//
// A Graph owns its values and nodes. Values are named as in the ONNX file and
// carry a dtype and a (possibly symbolic) shape; constants (initializers and
// folded subgraphs) carry their data. Nodes keep ONNX semantics: op type,
// domain, the opset version in force, inputs (nullptr for an omitted optional
// input), outputs and typed attributes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "anvil/types.h"
#include "core/tensor.h"
#include "ir/attributes.h"
#include "ir/shape.h"

namespace anvil::ir {

struct Node;

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  Node* producer = nullptr;        // null for graph inputs and constants
  std::optional<Tensor> constant;  // the data of an initializer or folded value

  bool is_constant() const { return constant.has_value(); }
};

struct Node {
  std::string name;  // unique; generated as "<op_type>_<index>" when the file has none
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  int opset = 0;       // the version of `domain` the model imports
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  Attributes attributes;

  // Optional inputs may be omitted (nullptr) or absent at the end.
  Value* input(std::size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  // "Conv 'conv1'", the way errors name a node.
  std::string describe() const;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;

  std::string name;
  int opset = 0;  // version of the default ONNX domain
  std::vector<Value*> inputs;   // runtime inputs, in file order (initializers excluded)
  std::vector<Value*> outputs;  // in file order

  // Adds a value; throws kInvalidModel if the name is taken.
  Value* add_value(const std::string& value_name);
  // A fresh value whose name starts with `hint` and is not yet taken.
  Value* add_unique_value(const std::string& hint);
  Value* find_value(const std::string& value_name) const;
  // Adds a constant value holding `data`.
  Value* add_constant(const std::string& hint, Tensor data);

  Node* add_node(std::unique_ptr<Node> node);
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<const Value*> values() const;

  // Orders nodes so producers come before consumers; throws kInvalidModel
  // naming the nodes of a cycle.
  void sort_topologically();
  // Removes nodes whose outputs reach no graph output or were folded to
  // constants (producer cleared), and values nobody uses.
  void remove_dead_nodes();
  // Nodes that read `value`, in graph order.
  std::vector<Node*> consumers(const Value* value) const;
  // Makes every reader of `from` (nodes and graph outputs) read `to` instead.
  void replace_all_uses(const Value* from, Value* to);

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace anvil::ir
