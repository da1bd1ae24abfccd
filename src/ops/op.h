// The interface every op implements, and its one-line registration.
//
// An op lives in one file (src/ops/<op>.cc) holding a class derived from Op:
// infer() validates attributes and input types and computes output dtypes and
// shapes; run() is the plain FP32 CPU reference kernel. Register it with
//
//   ANVIL_REGISTER_OP(Relu, "Relu", {.min_inputs = 1, .max_inputs = 1});
//
// The runtime calls infer() with concrete shapes and every input value known,
// then allocates the outputs and calls run(); the importer calls infer() with
// symbolic shapes and only the constant inputs known.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/error.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace anvil::ops {

// What the registry checks before calling an op: how many inputs and outputs
// a node may have (omitted optional inputs count as present slots).
struct OpSignature {
  int min_inputs = 1;
  int max_inputs = 1;
  int min_outputs = 1;
  int max_outputs = 1;
};

struct TensorInfo {
  DType dtype = DType::kUndefined;
  ir::Shape shape;
};

class InferContext {
 public:
  InferContext(const ir::Node& node, std::vector<TensorInfo> inputs,
               std::vector<const Tensor*> constants);

  const ir::Node& node() const { return node_; }
  int opset() const { return node_.opset; }
  const ir::Attributes& attributes() const { return node_.attributes; }

  std::size_t input_count() const { return inputs_.size(); }
  // False for an omitted optional input.
  bool has_input(std::size_t i) const;
  const TensorInfo& input(std::size_t i) const;
  // The input's data when known (a constant, or any input at run time); else null.
  const Tensor* constant(std::size_t i) const;
  // Like constant(i), but an error naming the input if it is not known.
  const Tensor& require_constant(std::size_t i, std::string_view what) const;

  // Requires input i to exist and have one of the listed dtypes.
  void expect_dtype(std::size_t i, std::initializer_list<DType> allowed) const;
  // Requires input i to have exactly `rank` dimensions.
  void expect_rank(std::size_t i, std::size_t rank) const;

  void set_output(std::size_t i, DType dtype, ir::Shape shape);
  std::vector<TensorInfo>& outputs() { return outputs_; }

  // Throws kInvalidModel with the node named: fail_node("kernel_shape must have 2 entries").
  template <typename... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    anvil::fail(ErrorKind::kInvalidModel, node_.describe(), ": ", parts...);
  }
  template <typename... Parts>
  [[noreturn]] void unsupported(const Parts&... parts) const {
    anvil::fail(ErrorKind::kUnsupported, node_.describe(), ": ", parts...);
  }

 private:
  const ir::Node& node_;
  std::vector<TensorInfo> inputs_;
  std::vector<const Tensor*> constants_;
  std::vector<TensorInfo> outputs_;
};

// Inputs (null for an omitted optional input) and preallocated outputs of one
// node execution on the CPU.
struct RunContext {
  const ir::Node& node;
  std::vector<const Tensor*> inputs;
  std::vector<Tensor>& outputs;

  const Tensor& input(std::size_t i) const { return *inputs[i]; }
  bool has_input(std::size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const ir::Attributes& attributes() const { return node.attributes; }
};

class Op {
 public:
  virtual ~Op() = default;
  // Validates the node and sets every output's dtype and shape.
  virtual void infer(InferContext& ctx) const = 0;
  // Computes the outputs (already allocated with the inferred shapes).
  virtual void run(RunContext& ctx) const = 0;
  // Multiply-accumulates of one execution, from concrete input and output
  // shapes; 0 for ops whose cost is memory traffic only.
  virtual std::int64_t macs(const InferContext& /*ctx*/) const { return 0; }
};

struct OpEntry {
  std::string_view op_type;
  OpSignature signature;
  const Op* op;
};

// Anvil's own domain, for the fused ops its passes create ("FusedConv", ...).
// They register as "anvil::<OpType>", e.g. ANVIL_REGISTER_OP(FusedConv, "anvil::FusedConv", ...).
inline constexpr std::string_view kAnvilDomain = "anvil";

// The op for an ONNX op type of the default domain, or null.
const OpEntry* find_op(std::string_view op_type);
// The op for an op type of `domain` ("" or "ai.onnx" for the default domain,
// kAnvilDomain for Anvil's fused ops), or null.
const OpEntry* find_op(std::string_view domain, std::string_view op_type);
// The op a node runs (its domain and op type), or null.
inline const OpEntry* find_op(const ir::Node& node) {
  return find_op(node.domain, node.op_type);
}
// Every registered op of the default domain, sorted by op type.
std::vector<const OpEntry*> registered_ops();

// Runs the registry's checks and then op.infer(); returns the outputs.
std::vector<TensorInfo> infer_node(const ir::Node& node, std::vector<TensorInfo> inputs,
                                   std::vector<const Tensor*> constants);

namespace detail {
struct Registrar {
  Registrar(std::string_view op_type, OpSignature signature, const Op* op);
};
}  // namespace detail

}  // namespace anvil::ops

#define ANVIL_REGISTER_OP(Class, op_type, ...)                       \
  static const Class kOp##Class;                                     \
  static const ::anvil::ops::detail::Registrar kRegistrar##Class(    \
      op_type, ::anvil::ops::OpSignature __VA_ARGS__, &kOp##Class)

namespace anvil::ops {

// Executes one node on the CPU: infers the concrete output shapes from the
// inputs (null for omitted optional inputs), allocates and computes them.
std::vector<Tensor> run_node(const ir::Node& node, const std::vector<const Tensor*>& inputs);

}  // namespace anvil::ops
