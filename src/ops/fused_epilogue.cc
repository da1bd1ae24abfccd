#include "ops/fused_epilogue.h"

#include <algorithm>

namespace anvil::ops {

namespace {

// A one-node call of the activation op, built from the fused node's attributes.
// Owns the values its node points at, so it is neither copied nor moved.
class ActivationCall {
 public:
  explicit ActivationCall(const ir::Node& fused) {
    node_.op_type = fused.attributes.get_string("activation", "");
    node_.name = fused.name + "/" + node_.op_type;
    node_.opset = fused.opset;
    for (const char* name : {"alpha", "beta"}) {
      const std::string key = cat("activation_", name);
      if (fused.attributes.has(key)) node_.attributes.set(name, fused.attributes.get_float(key, 0));
    }
    node_.inputs = {&x_};
    node_.outputs = {&y_};
    if (node_.op_type != "Clip") return;
    const bool has_min = fused.attributes.has("clip_min");
    const bool has_max = fused.attributes.has("clip_max");
    min_ = Tensor::from<float>({}, {fused.attributes.get_float("clip_min", 0)});
    max_ = Tensor::from<float>({}, {fused.attributes.get_float("clip_max", 0)});
    if (has_min || has_max) node_.inputs.push_back(has_min ? &min_value_ : nullptr);
    if (has_max) node_.inputs.push_back(&max_value_);
  }
  ActivationCall(const ActivationCall&) = delete;
  ActivationCall& operator=(const ActivationCall&) = delete;

  const ir::Node& node() const { return node_; }

  std::vector<const Tensor*> inputs(const Tensor* x) const {
    std::vector<const Tensor*> in{x};
    if (node_.inputs.size() > 1) in.push_back(node_.inputs[1] ? &min_ : nullptr);
    if (node_.inputs.size() > 2) in.push_back(&max_);
    return in;
  }

 private:
  ir::Node node_;
  ir::Value x_, y_, min_value_, max_value_;
  Tensor min_, max_;
};

bool has_activation(const ir::Node& fused) {
  return !fused.attributes.get_string("activation", "").empty();
}

}  // namespace

bool is_fusable_activation(std::string_view op_type) {
  return std::find(kFusableActivations.begin(), kFusableActivations.end(), op_type) !=
         kFusableActivations.end();
}

void infer_epilogue(const InferContext& ctx, std::size_t residual_input, const ir::Shape& output) {
  if (ctx.has_input(residual_input)) {
    ctx.expect_dtype(residual_input, {DType::kFloat32});
    const ir::Shape& r = ctx.input(residual_input).shape;
    bool same = r.rank() == output.rank();
    for (std::size_t d = 0; same && d < r.rank(); ++d)
      same = !r[d].is_known() || !output[d].is_known() || r[d].size == output[d].size;
    if (!same)
      ctx.fail("residual ", to_string(r), " must have the output's shape ", to_string(output));
  }
  if (!has_activation(ctx.node())) return;
  const std::string activation = ctx.attributes().get_string("activation", "");
  if (!is_fusable_activation(activation))
    ctx.unsupported("activation '", activation, "' cannot be fused");
  for (const char* name : {"clip_min", "clip_max"})
    ctx.attributes().get_float(name, 0);
  // The activation op checks its own attributes, on the fused node's output shape.
  const ActivationCall call(ctx.node());
  const Tensor scalar = Tensor::from<float>({}, {0.0f});
  std::vector<TensorInfo> infos{TensorInfo{DType::kFloat32, output}};
  std::vector<const Tensor*> constants{nullptr};
  for (std::size_t i = 1; i < call.node().inputs.size(); ++i) {
    const bool present = call.node().inputs[i] != nullptr;
    infos.push_back(present ? TensorInfo{DType::kFloat32, ir::Shape{}} : TensorInfo{});
    constants.push_back(present ? &scalar : nullptr);
  }
  infer_node(call.node(), std::move(infos), std::move(constants));
}

void run_epilogue(const RunContext& ctx, std::size_t residual_input, Tensor& y) {
  if (ctx.has_input(residual_input)) {
    const float* r = ctx.input(residual_input).data<float>();
    float* out = y.data<float>();
    // y + r rather than r + y: the same float either way, addition commutes.
    for (std::int64_t i = 0, n = y.element_count(); i < n; ++i)
      out[i] += r[i];
  }
  if (!has_activation(ctx.node)) return;
  const ActivationCall call(ctx.node);
  // Tensor copies share their bytes: the activation writes y in place, which
  // elementwise ops allow.
  std::vector<Tensor> outputs{y};
  RunContext act{call.node(), call.inputs(&y), outputs};
  find_op(call.node())->op->run(act);
}

}  // namespace anvil::ops
