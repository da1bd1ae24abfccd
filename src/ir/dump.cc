#include "ir/dump.h"

#include <sstream>

namespace anvil::ir {

namespace {

std::string type_of(const Value& v) {
  return cat(to_string(v.dtype), to_string(v.shape));
}

// Constants print as $name (small ones with their values), others as %name.
std::string operand(const Value* v) {
  if (!v) return "<none>";
  if (!v->is_constant()) return cat("%", v->name);
  const Tensor& t = *v->constant;
  std::string out = cat("$", v->name);
  if ((t.dtype() == DType::kInt64 || t.dtype() == DType::kInt32) && t.element_count() <= 8) {
    out += "{";
    std::int64_t i = 0;
    for (std::int64_t x : t.to_int64s())
      out += (i++ ? "," : "") + std::to_string(x);
    return out + "}";
  }
  return out + ":" + type_of(*v);
}

std::string attribute(const AttributeValue& value) {
  std::ostringstream out;
  auto list = [&](const auto& items) {
    out << '[';
    for (std::size_t i = 0; i < items.size(); ++i)
      out << (i ? "," : "") << items[i];
    out << ']';
  };
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Tensor>)
          out << "tensor" << anvil::to_string(v.extents());
        else if constexpr (std::is_same_v<T, std::string>)
          out << '"' << v << '"';
        else if constexpr (std::is_arithmetic_v<T>)
          out << v;
        else
          list(v);
      },
      value);
  return out.str();
}

}  // namespace

std::string dump(const Graph& graph) {
  std::ostringstream out;
  out << "graph \"" << graph.name << "\" opset " << graph.opset << "\n";
  for (const Value* in : graph.inputs)
    out << "  input  %" << in->name << ": " << type_of(*in) << "\n";
  for (const auto& node : graph.nodes()) {
    out << "  ";
    for (std::size_t i = 0; i < node->outputs.size(); ++i)
      out << (i ? ", " : "") << "%" << node->outputs[i]->name << ": " << type_of(*node->outputs[i]);
    out << " = " << node->op_type << " \"" << node->name << "\"(";
    for (std::size_t i = 0; i < node->inputs.size(); ++i)
      out << (i ? ", " : "") << operand(node->inputs[i]);
    out << ")";
    if (!node->attributes.all().empty()) {
      out << " {";
      bool first = true;
      for (const auto& [name, value] : node->attributes.all()) {
        out << (first ? "" : ", ") << name << "=" << attribute(value);
        first = false;
      }
      out << "}";
    }
    out << "\n";
  }
  for (const Value* o : graph.outputs)
    out << "  output " << operand(o) << "\n";
  return out.str();
}

}  // namespace anvil::ir
