#include "onnx/importer.h"

#include <limits>
#include <map>
#include <set>

#include "anvil/error.h"
#include "onnx/onnx_subset.pb.h"
#include "onnx/tensor_proto.h"
#include "ops/infer_shapes.h"
#include "ops/op.h"

namespace anvil::onnx {

namespace {

int default_opset(const ModelProto& model) {
  int opset = -1;
  for (const auto& entry : model.opset_import())
    if (entry.domain().empty() || entry.domain() == "ai.onnx")
      opset = static_cast<int>(entry.version());
  if (opset < 0)
    fail(ErrorKind::kInvalidModel, "the model imports no default ONNX opset (opset_import)");
  if (opset < kMinOpset || opset > kMaxOpset)
    fail(ErrorKind::kUnsupported, "the model uses ONNX opset ", opset, "; Anvil supports opsets ",
         kMinOpset, " to ", kMaxOpset,
         ". Re-export it, e.g. torch.onnx.export(..., opset_version=17)");
  return opset;
}

ir::Shape shape_from(const TensorShapeProto& proto) {
  ir::Shape shape;
  for (const auto& dim : proto.dim()) {
    if (dim.has_dim_value() && dim.dim_value() >= 0)
      shape.dims().push_back(ir::Dim::known(dim.dim_value()));
    else if (dim.has_dim_param() && !dim.dim_param().empty())
      shape.dims().push_back(ir::Dim::named(dim.dim_param()));
    else
      shape.dims().push_back(ir::Dim::unknown());
  }
  return shape;
}

void read_graph_input(const ValueInfoProto& info, ir::Graph& graph) {
  const auto& type = info.type();
  if (!type.has_tensor_type())
    fail(ErrorKind::kUnsupported, "graph input '", info.name(), "' is not a tensor");
  ir::Value* value = graph.add_value(info.name());
  value->dtype = dtype_from_onnx(type.tensor_type().elem_type());
  if (value->dtype == DType::kUndefined)
    fail(ErrorKind::kUnsupported, "graph input '", info.name(), "' has ONNX data type ",
         type.tensor_type().elem_type(), ", which Anvil does not support");
  if (!type.tensor_type().has_shape())
    fail(ErrorKind::kUnsupported, "graph input '", info.name(),
         "' has no shape; export the model with input shapes");
  value->shape = shape_from(type.tensor_type().shape());
  graph.inputs.push_back(value);
}

ir::AttributeValue attribute_value(const AttributeProto& attr,
                                   const std::filesystem::path& model_dir,
                                   const std::string& where) {
  using Type = AttributeProto::AttributeType;
  Type type = attr.type();
  if (type == AttributeProto::UNDEFINED) {  // files older than IR 3 leave it out
    if (attr.has_f()) type = AttributeProto::FLOAT;
    else if (attr.has_i()) type = AttributeProto::INT;
    else if (attr.has_s()) type = AttributeProto::STRING;
    else if (attr.has_t()) type = AttributeProto::TENSOR;
    else if (attr.floats_size()) type = AttributeProto::FLOATS;
    else if (attr.ints_size()) type = AttributeProto::INTS;
    else if (attr.strings_size()) type = AttributeProto::STRINGS;
  }
  switch (static_cast<Type>(type)) {
    case AttributeProto::FLOAT:
      return attr.f();
    case AttributeProto::INT:
      return attr.i();
    case AttributeProto::STRING:
      return attr.s();
    case AttributeProto::TENSOR:
      return to_tensor(attr.t(), model_dir, cat(where, " attribute '", attr.name(), "'"));
    case AttributeProto::FLOATS:
      return std::vector<float>(attr.floats().begin(), attr.floats().end());
    case AttributeProto::INTS:
      return std::vector<std::int64_t>(attr.ints().begin(), attr.ints().end());
    case AttributeProto::STRINGS:
      return std::vector<std::string>(attr.strings().begin(), attr.strings().end());
    default:
      fail(ErrorKind::kUnsupported, where, ": attribute '", attr.name(), "' has type ",
           AttributeProto::AttributeType_Name(type), ", which Anvil does not support");
  }
}

// Creates the node and its output values; inputs are resolved later, once
// every value of the graph exists (files need not be topologically sorted).
ir::Node* add_node(const NodeProto& proto, int index, int opset,
                   const std::filesystem::path& model_dir, ir::Graph& graph) {
  auto node = std::make_unique<ir::Node>();
  node->op_type = proto.op_type();
  node->domain = proto.domain() == "ai.onnx" ? "" : proto.domain();
  node->opset = opset;
  node->name = proto.name().empty() ? cat(proto.op_type(), "_", index) : proto.name();
  for (const auto& attr : proto.attribute()) {
    if (!attr.ref_attr_name().empty())
      fail(ErrorKind::kUnsupported, node->describe(), ": attribute references are not supported");
    node->attributes.set(attr.name(), attribute_value(attr, model_dir, node->describe()));
  }
  for (const auto& out : proto.output()) {
    if (out.empty())  // an omitted optional output
      node->outputs.push_back(graph.add_unique_value(node->name + "_unused"));
    else if (graph.find_value(out))
      fail(ErrorKind::kInvalidModel, node->describe(), ": output '", out,
           "' is already defined by another node, initializer or graph input");
    else
      node->outputs.push_back(graph.add_value(out));
  }
  return graph.add_node(std::move(node));
}

void resolve_inputs(const NodeProto& proto, ir::Node& node, const ir::Graph& graph) {
  for (const auto& name : proto.input()) {
    if (name.empty()) {
      node.inputs.push_back(nullptr);
      continue;
    }
    ir::Value* value = graph.find_value(name);
    if (!value)
      fail(ErrorKind::kInvalidModel, node.describe(), ": input '", name,
           "' is not produced by any node, initializer or graph input");
    node.inputs.push_back(value);
  }
}

void check_ops_supported(const ir::Graph& graph) {
  std::vector<std::string> bad;
  std::set<std::string> kinds;
  for (const auto& node : graph.nodes()) {
    const bool default_domain = node->domain.empty();
    if (default_domain && ops::find_op(node->op_type)) continue;
    std::string kind = default_domain ? node->op_type : node->domain + "::" + node->op_type;
    bad.push_back(cat("'", node->name, "' (", kind, ")"));
    kinds.insert(kind);
  }
  if (bad.empty()) return;
  std::string nodes, types;
  for (const auto& b : bad) nodes += (nodes.empty() ? "" : ", ") + b;
  for (const auto& k : kinds) types += (types.empty() ? "" : ", ") + k;
  fail(ErrorKind::kUnsupported, bad.size(), " node(s) use ops Anvil does not support (", types,
       "): ", nodes, ". Run `anvil inspect --ops` for the supported op set");
}

ir::Graph build_graph(const ModelProto& model, const std::filesystem::path& model_dir) {
  if (!model.has_graph() || (model.graph().node_size() == 0 && model.graph().output_size() == 0))
    fail(ErrorKind::kInvalidModel, "the file holds no ONNX graph (is it an ONNX model?)");
  const GraphProto& proto = model.graph();
  ir::Graph graph;
  graph.name = proto.name();
  graph.opset = default_opset(model);

  std::set<std::string> initializer_names;
  for (const auto& init : proto.initializer()) {
    if (init.name().empty()) fail(ErrorKind::kInvalidModel, "an initializer has no name");
    ir::Value* value = graph.add_value(init.name());
    value->constant = to_tensor(init, model_dir, cat("initializer '", init.name(), "'"));
    value->dtype = value->constant->dtype();
    value->shape = ir::Shape::of(value->constant->extents());
    initializer_names.insert(init.name());
  }
  for (const auto& input : proto.input())
    if (!initializer_names.count(input.name())) read_graph_input(input, graph);

  std::vector<ir::Node*> nodes;
  for (int i = 0; i < proto.node_size(); ++i)
    nodes.push_back(add_node(proto.node(i), i, graph.opset, model_dir, graph));
  for (int i = 0; i < proto.node_size(); ++i) resolve_inputs(proto.node(i), *nodes[i], graph);

  for (const auto& output : proto.output()) {
    ir::Value* value = graph.find_value(output.name());
    if (!value)
      fail(ErrorKind::kInvalidModel, "graph output '", output.name(),
           "' is not produced by any node, initializer or graph input");
    graph.outputs.push_back(value);
  }
  if (graph.outputs.empty()) fail(ErrorKind::kInvalidModel, "the graph has no outputs");

  check_ops_supported(graph);
  graph.sort_topologically();
  ops::infer_shapes(graph);
  return graph;
}

}  // namespace

ir::Graph import_model_bytes(std::string_view bytes, const std::filesystem::path& model_dir,
                             std::string_view label) {
  try {
    if (bytes.empty()) fail(ErrorKind::kInvalidModel, "the file is empty");
    ModelProto model;
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      fail(ErrorKind::kUnsupported, "models over 2 GiB must keep their weights as external data");
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      fail(ErrorKind::kInvalidModel,
           "not a valid ONNX model (protobuf parsing failed: truncated or corrupt file?)");
    return build_graph(model, model_dir);
  } catch (const Error& e) {
    throw Error(e.kind(), cat(label, ": ", e.what()));
  }
}

ir::Graph import_model(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);  // its errors name the path already
  return import_model_bytes(bytes, path.parent_path(), path.string());
}

}  // namespace anvil::onnx
