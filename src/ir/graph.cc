#include "ir/graph.h"

#include <algorithm>
#include <unordered_set>

#include "anvil/error.h"

namespace anvil::ir {

std::string Node::describe() const { return cat(op_type, " '", name, "'"); }

Value* Graph::add_value(const std::string& value_name) {
  if (by_name_.count(value_name))
    fail(ErrorKind::kInvalidModel, "tensor '", value_name, "' is defined more than once");
  auto value = std::make_unique<Value>();
  value->name = value_name;
  Value* raw = value.get();
  values_.push_back(std::move(value));
  by_name_[value_name] = raw;
  return raw;
}

Value* Graph::add_unique_value(const std::string& hint) {
  std::string candidate = hint;
  for (int i = 1; by_name_.count(candidate); ++i) candidate = cat(hint, "_", i);
  return add_value(candidate);
}

Value* Graph::find_value(const std::string& value_name) const {
  auto it = by_name_.find(value_name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::add_constant(const std::string& hint, Tensor data) {
  Value* value = add_unique_value(hint);
  value->dtype = data.dtype();
  value->shape = Shape::of(data.extents());
  value->constant = std::move(data);
  return value;
}

Node* Graph::add_node(std::unique_ptr<Node> node) {
  for (Value* out : node->outputs) out->producer = node.get();
  nodes_.push_back(std::move(node));
  return nodes_.back().get();
}

std::vector<const Value*> Graph::values() const {
  std::vector<const Value*> out;
  for (const auto& v : values_) out.push_back(v.get());
  return out;
}

void Graph::sort_topologically() {
  // Kahn's algorithm, stable with respect to the file's order.
  std::unordered_map<const Node*, int> pending;
  std::unordered_map<const Value*, std::vector<Node*>> readers;
  for (const auto& node : nodes_) {
    int count = 0;
    for (const Value* in : node->inputs) {
      if (in && in->producer) {
        ++count;
        readers[in].push_back(node.get());
      }
    }
    pending[node.get()] = count;
  }
  std::vector<Node*> ready;
  for (const auto& node : nodes_)
    if (pending[node.get()] == 0) ready.push_back(node.get());
  std::vector<Node*> order;
  for (std::size_t i = 0; i < ready.size(); ++i) {
    Node* node = ready[i];
    order.push_back(node);
    for (const Value* out : node->outputs)
      for (Node* reader : readers[out])
        if (--pending[reader] == 0) ready.push_back(reader);
  }
  if (order.size() != nodes_.size()) {
    std::string stuck;
    for (const auto& node : nodes_)
      if (pending[node.get()] > 0) stuck += (stuck.empty() ? "" : ", ") + node->describe();
    fail(ErrorKind::kInvalidModel, "the graph has a cycle through: ", stuck,
         ". ONNX graphs must be acyclic; re-export the model");
  }
  std::unordered_map<const Node*, std::size_t> position;
  for (std::size_t i = 0; i < order.size(); ++i) position[order[i]] = i;
  std::sort(nodes_.begin(), nodes_.end(),
            [&](const auto& a, const auto& b) { return position[a.get()] < position[b.get()]; });
}

void Graph::remove_dead_nodes() {
  std::unordered_set<const Value*> live(outputs.begin(), outputs.end());
  std::unordered_set<const Node*> keep;
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    const Node* node = it->get();
    // A folded node's outputs are constants with no producer: it is not needed.
    bool needed = std::any_of(node->outputs.begin(), node->outputs.end(), [&](const Value* v) {
      return live.count(v) != 0 && v->producer == node;
    });
    if (!needed) continue;
    keep.insert(node);
    live.insert(node->outputs.begin(), node->outputs.end());  // unused outputs stay attached
    for (const Value* in : node->inputs)
      if (in) live.insert(in);
  }
  std::erase_if(nodes_, [&](const auto& node) { return keep.count(node.get()) == 0; });
  for (const Value* in : inputs) live.insert(in);
  std::erase_if(values_, [&](const auto& value) {
    if (live.count(value.get())) return false;
    by_name_.erase(value->name);
    return true;
  });
}

std::vector<Node*> Graph::consumers(const Value* value) const {
  std::vector<Node*> out;
  for (const auto& node : nodes_)
    if (std::find(node->inputs.begin(), node->inputs.end(), value) != node->inputs.end())
      out.push_back(node.get());
  return out;
}

void Graph::replace_all_uses(const Value* from, Value* to) {
  for (const auto& node : nodes_)
    std::replace(node->inputs.begin(), node->inputs.end(), const_cast<Value*>(from), to);
  std::replace(outputs.begin(), outputs.end(), const_cast<Value*>(from), to);
}

}  // namespace anvil::ir
