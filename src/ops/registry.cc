#include <algorithm>
#include <map>

#include "ops/op.h"

namespace anvil::ops {

namespace {

// Filled by static registrars before main(); read-only afterwards.
std::map<std::string_view, OpEntry>& table() {
  static std::map<std::string_view, OpEntry> entries;
  return entries;
}

}  // namespace

detail::Registrar::Registrar(std::string_view op_type, OpSignature signature, const Op* op) {
  auto [it, inserted] = table().emplace(op_type, OpEntry{op_type, signature, op});
  ANVIL_CHECK(inserted);
}

const OpEntry* find_op(std::string_view op_type) {
  // Keys with "::" belong to other domains: a default-domain node cannot name them.
  if (op_type.find(':') != std::string_view::npos) return nullptr;
  auto it = table().find(op_type);
  return it == table().end() ? nullptr : &it->second;
}

const OpEntry* find_op(std::string_view domain, std::string_view op_type) {
  if (domain.empty() || domain == "ai.onnx") return find_op(op_type);
  if (domain != kAnvilDomain || op_type.find(':') != std::string_view::npos) return nullptr;
  auto it = table().find(cat(domain, "::", op_type));
  return it == table().end() ? nullptr : &it->second;
}

std::vector<const OpEntry*> registered_ops() {
  std::vector<const OpEntry*> out;
  for (const auto& [name, entry] : table())
    if (name.find(':') == std::string_view::npos) out.push_back(&entry);
  return out;
}

InferContext::InferContext(const ir::Node& node, std::vector<TensorInfo> inputs,
                           std::vector<const Tensor*> constants)
    : node_(node), inputs_(std::move(inputs)), constants_(std::move(constants)) {
  ANVIL_CHECK(inputs_.size() == constants_.size());
  outputs_.resize(node.outputs.size());
}

bool InferContext::has_input(std::size_t i) const {
  return i < inputs_.size() && inputs_[i].dtype != DType::kUndefined;
}

const TensorInfo& InferContext::input(std::size_t i) const {
  if (!has_input(i)) fail("required input ", i, " is missing");
  return inputs_[i];
}

const Tensor* InferContext::constant(std::size_t i) const {
  return i < constants_.size() ? constants_[i] : nullptr;
}

const Tensor& InferContext::require_constant(std::size_t i, std::string_view what) const {
  if (const Tensor* t = constant(i)) return *t;
  unsupported("input ", i, " (", what, ") must be a constant or computable from shapes at import");
}

void InferContext::expect_dtype(std::size_t i, std::initializer_list<DType> allowed) const {
  DType got = input(i).dtype;
  if (std::find(allowed.begin(), allowed.end(), got) != allowed.end()) return;
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : " or ") + std::string(to_string(d));
  anvil::fail(ErrorKind::kUnsupported, node_.describe(), ": input ", i, " ('",
              node_.inputs[i]->name, "') has dtype ", to_string(got), "; supported: ", names);
}

void InferContext::expect_rank(std::size_t i, std::size_t rank) const {
  if (input(i).shape.rank() != rank)
    fail("input ", i, " must have rank ", rank, ", got shape ", to_string(input(i).shape));
}

void InferContext::set_output(std::size_t i, DType dtype, ir::Shape shape) {
  ANVIL_CHECK(i < outputs_.size());
  outputs_[i] = TensorInfo{dtype, std::move(shape)};
}

std::vector<TensorInfo> infer_node(const ir::Node& node, std::vector<TensorInfo> inputs,
                                   std::vector<const Tensor*> constants) {
  const OpEntry* entry = find_op(node);
  if (!entry) fail(ErrorKind::kUnsupported, node.describe(), ": op type is not supported");
  const OpSignature& sig = entry->signature;
  const int n_in = static_cast<int>(node.inputs.size());
  const int n_out = static_cast<int>(node.outputs.size());
  if (n_in < sig.min_inputs || n_in > sig.max_inputs)
    fail(ErrorKind::kInvalidModel, node.describe(), ": has ", n_in, " inputs, expected ",
         sig.min_inputs, sig.min_inputs == sig.max_inputs ? "" : cat(" to ", sig.max_inputs));
  if (n_out < sig.min_outputs || n_out > sig.max_outputs)
    fail(ErrorKind::kInvalidModel, node.describe(), ": has ", n_out, " outputs, expected ",
         sig.min_outputs, sig.min_outputs == sig.max_outputs ? "" : cat(" to ", sig.max_outputs));
  InferContext ctx(node, std::move(inputs), std::move(constants));
  try {
    entry->op->infer(ctx);
  } catch (const Error& e) {
    // Shared helpers (attribute getters, axis checks) do not know the node.
    const std::string message = e.what();
    if (message.find(node.describe()) != std::string::npos) throw;
    throw Error(e.kind(), cat(node.describe(), ": ", message));
  }
  for (std::size_t i = 0; i < ctx.outputs().size(); ++i)
    ANVIL_CHECK(ctx.outputs()[i].dtype != DType::kUndefined);
  return std::move(ctx.outputs());
}

}  // namespace anvil::ops

namespace anvil::ops {

namespace {
constexpr double kMaxOutputBytes = 8e9;
}  // namespace

std::vector<Tensor> run_node(const ir::Node& node, const std::vector<const Tensor*>& inputs) {
  std::vector<TensorInfo> infos;
  for (const Tensor* t : inputs)
    infos.push_back(t ? TensorInfo{t->dtype(), ir::Shape::of(t->extents())} : TensorInfo{});
  std::vector<Tensor> outputs;
  for (TensorInfo& info : infer_node(node, std::move(infos), inputs)) {
    auto extents = info.shape.extents();
    ANVIL_CHECK(extents.has_value());
    // A valid but absurd shape (a corrupt Pad or Reshape) must be an error,
    // not an out-of-memory abort.
    const double bytes = static_cast<double>(element_count(*extents)) *
                         static_cast<double>(size_of(info.dtype));
    if (bytes > kMaxOutputBytes)
      fail(ErrorKind::kInvalidArgument, node.describe(), ": would produce a tensor of shape ",
           to_string(*extents), " (", bytes / 1e9, " GB), more than the CPU runtime allows");
    outputs.emplace_back(info.dtype, std::move(*extents));
  }
  RunContext ctx{node, inputs, outputs};
  find_op(node)->op->run(ctx);
  return outputs;
}

}  // namespace anvil::ops
