#include "builder/lower.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "builder/fold_output_reformat.h"
#include "builder/fuse_conv_max_pool.h"
#include "builder/weights.h"
#include "ops/fused_epilogue.h"
#include "ops/op.h"
#include "ops/window.h"
#include "passes/activation_match.h"
#include "passes/graph_edit.h"
#include "plan/streams.h"
#include "quant/int8_weights.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;

constexpr float kUnbounded = std::numeric_limits<float>::max();
// cuda::kFp8ChannelMultiple, which the CPU-only build cannot include.
constexpr std::int64_t kFp8ChannelMultiple = 16;

template <typename... Parts>
[[noreturn]] void unsupported(const Parts&... parts) {
  fail(ErrorKind::kUnsupported, parts...);
}

// Thrown for a node whose input could not be lowered because its producer
// failed: that producer is already listed, the node itself is not judged.
struct UpstreamFailed {};

// How a value lives in the engine: its tensor, logical geometry and, for an
// INT8 tensor, its scale (real = scale * q).
struct Lowered {
  int tensor = -1;
  bool spatial = true;  // NHWC, else NC
  std::int64_t c = 0;
  std::int64_t c_pad = 0;
  std::int64_t h = 1;
  std::int64_t w = 1;
  bool int8 = false;  // else the plan's storage type
  float scale = 0.0f;

  bool same_geometry(const Lowered& o) const {
    return spatial == o.spatial && c == o.c && c_pad == o.c_pad && h == o.h && w == o.w;
  }
};

struct Activation {
  std::string name = "none";
  float alpha = 0.0f;
  float beta = 0.0f;
  float clip_min = -kUnbounded;
  float clip_max = kUnbounded;
};

// The activation of a fused node's epilogue attributes (ops/fused_epilogue.h),
// with the ONNX defaults of each activation filled in.
Activation read_activation(const ir::Attributes& a) {
  const std::string op = a.get_string("activation", "");
  Activation act;
  if (op.empty()) return act;
  if (op == "Relu") {
    act.name = "relu";
  } else if (op == "Clip") {
    act.name = "clip";
    act.clip_min = a.get_float("clip_min", -kUnbounded);
    act.clip_max = a.get_float("clip_max", kUnbounded);
  } else if (op == "LeakyRelu") {
    act.name = "leaky_relu";
    act.alpha = a.get_float("activation_alpha", 0.01f);
  } else if (op == "Sigmoid") {
    act.name = "sigmoid";
  } else if (op == "HardSigmoid") {
    act.name = "hard_sigmoid";
    act.alpha = a.get_float("activation_alpha", 0.2f);
    act.beta = a.get_float("activation_beta", 0.5f);
  } else if (op == "HardSwish") {
    act.name = "hard_swish";
  } else {
    unsupported("activation '", op, "' has no GPU epilogue");
  }
  return act;
}

void put_activation(json& params, const Activation& act) {
  params["activation"] = act.name;
  params["alpha"] = act.alpha;
  params["beta"] = act.beta;
  params["clip_min"] = act.clip_min;
  params["clip_max"] = act.clip_max;
}

bool is_onnx(const ir::Node& node) {
  return node.domain.empty() || node.domain == "ai.onnx";
}

bool is_anvil(const ir::Node& node, std::string_view op_type) {
  return node.domain == ops::kAnvilDomain && node.op_type == op_type;
}

std::int64_t batch_dim(const ir::Shape& shape) {
  return shape.rank() > 0 && shape[0].is_known() ? shape[0].size : -1;
}

// The known size of dim `i`, or kUnsupported naming `what`.
std::int64_t static_dim(const ir::Value& v, std::size_t i) {
  if (i >= v.shape.rank() || !v.shape[i].is_known())
    unsupported("'", v.name, "' has shape ", to_string(v.shape), "; dim ", i,
                " must be static for the GPU engine");
  return v.shape[i].size;
}

// The geometry of a 2-D window (Conv's or a pool's) over its input.
struct Window2d {
  ops::AxisWindow h, w;
};

class Lowerer {
 public:
  Lowerer(const ir::Graph& graph, const LowerOptions& options)
      : graph_(graph),
        options_(options),
        storage_(options.fp16 ? DType::kFloat16 : DType::kFloat32),
        align_(options.fp16 ? 8 : 4) {
    for (const ir::Value* v : graph.inputs)
      reserved_names_.insert(v->name);
    for (const ir::Value* v : graph.outputs)
      reserved_names_.insert(v->name);
    if (!options.int8_scales.empty() && !options.fp16)
      fail(ErrorKind::kInvalidArgument,
           "INT8 and FP8 layers need an FP16 plan (--fp16 with --int8 or --fp8)");
    quant::quantized_max(options.quantized);  // kInvalidArgument unless INT8 or FP8
    batch_ = graph.inputs.empty() ? -1 : batch_dim(graph.inputs[0]->shape);
  }

  plan::Plan run() {
    plan_.options.fp16 = options_.fp16;
    plan_.options.tf32 = options_.tf32;
    for (const ir::Value* input : graph_.inputs)
      guarded(cat("graph input '", input->name, "'"), [&] { lower_input(*input); });
    for (const auto& node : graph_.nodes())
      if (!absorbed_.contains(node.get())) lower_node(*node);
    for (const ir::Value* output : graph_.outputs)
      guarded(cat("graph output '", output->name, "'"), [&] { lower_output(*output); });
    if (!problems_.empty()) {
      std::string list;
      for (const std::string& p : problems_)
        list += (list.empty() ? "" : "; ") + p;
      unsupported("cannot lower the graph to GPU layers, ", problems_.size(),
                  " problem(s): ", list);
    }
    if (options_.fp16 && options_.fuse_conv_max_pool) fuse_conv_max_pool(plan_);
    if (options_.fold_output_reformat) fold_output_reformat(plan_);
    add_profile();
    return std::move(plan_);
  }

 private:
  // Runs `lower`, recording a kUnsupported or kInvalidModel error as a
  // problem of `what` instead of stopping: the caller lists them all.
  template <typename Fn>
  bool guarded(const std::string& what, Fn&& lower) {
    try {
      lower();
      return true;
    } catch (const UpstreamFailed&) {
      return false;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kUnsupported && e.kind() != ErrorKind::kInvalidModel) throw;
      std::string message = e.what();
      // Errors from ops/window.h already start with the node.
      if (message.rfind(what + ": ", 0) == 0) message.erase(0, what.size() + 2);
      problems_.push_back(cat(what, ": ", message));
      return false;
    }
  }

  void lower_node(const ir::Node& node) {
    const bool all_constant = std::all_of(node.outputs.begin(), node.outputs.end(),
                                          [](const ir::Value* v) { return v->is_constant(); });
    if (all_constant) return;  // folded; only its values remain in use
    if (!guarded(node.describe(), [&] { dispatch(node); })) define_placeholders(node);
  }

  void dispatch(const ir::Node& node) {
    const std::string& op = node.op_type;
    const bool onnx = is_onnx(node);
    if ((onnx && op == "Conv") || is_anvil(node, "FusedConv")) return lower_conv(node);
    if ((onnx && op == "Gemm") || is_anvil(node, "FusedGemm")) return lower_gemm(node);
    if (onnx && (op == "MaxPool" || op == "AveragePool")) return lower_pool(node);
    if (onnx && op == "GlobalAveragePool") return lower_global_avg_pool(node);
    if (onnx && op == "Add") return lower_add(node);
    if (onnx && ops::is_fusable_activation(op)) return lower_activation(node);
    if (onnx && (op == "Identity" || op == "Dropout")) return lower_identity(node);
    if (onnx && (op == "Flatten" || op == "Reshape" || op == "Squeeze"))
      return lower_to_nc_alias(node);
    unsupported("the GPU engine has no layer for this op");
  }

  // ---- Values and tensors -----------------------------------------------------

  // The node's input `i`: a runtime value, not a constant, already lowered.
  const ir::Value* runtime_input(const ir::Node& node, std::size_t i) const {
    const ir::Value* v = node.input(i);
    if (!v) unsupported("input ", i, " is missing");
    if (v->is_constant())
      unsupported("input '", v->name,
                  "' is a constant; the engine takes constants as weights only");
    if (!values_.contains(v)) throw UpstreamFailed{};
    return v;
  }

  // The lowered value of the node's input `i` as it is stored (INT8 or not).
  const Lowered& stored_input(const ir::Node& node, std::size_t i) const {
    return values_.at(runtime_input(node, i));
  }

  // The node's input `i` in the plan's storage type: every layer but an INT8
  // convolution reads this.
  const Lowered& input_of(const ir::Node& node, std::size_t i) {
    return float_view(runtime_input(node, i));
  }

  // `value` in the storage type: an INT8 value is dequantized once, where
  // its first float reader needs it.
  const Lowered& float_view(const ir::Value* value) {
    const Lowered& stored = values_.at(value);
    if (!stored.int8) return stored;
    if (const auto it = float_views_.find(value); it != float_views_.end()) return it->second;
    Lowered f = stored;
    f.int8 = false;
    f.scale = 0.0f;
    f = storage_tensor(cat(value->name, ":fp16"), f);
    add_layer(cat("dequantize:", value->name), "dequantize", {stored.tensor}, {f.tensor},
              quantize_params(f, stored.scale));
    return float_views_[value] = f;
  }

  // `value` as INT8 with `scale`: quantized once per scale from its float view.
  const Lowered& int8_view(const ir::Value* value, float scale) {
    const Lowered& stored = values_.at(value);
    if (stored.int8 && stored.scale == scale) return stored;
    const auto key = std::make_pair(value, scale);
    if (const auto it = int8_views_.find(key); it != int8_views_.end()) return it->second;
    const Lowered f = float_view(value);
    Lowered q = f;
    q.int8 = true;
    q.scale = scale;
    q = storage_tensor(
        cat(value->name, options_.quantized == DType::kFloat8E4M3 ? ":fp8" : ":int8"), q);
    add_layer(cat("quantize:", value->name), "quantize", {f.tensor}, {q.tensor},
              quantize_params(f, scale));
    return int8_views_[key] = q;
  }

  static json quantize_params(const Lowered& s, float scale) {
    return {{"c", s.c},
            {"c_pad", s.c_pad},
            {"h", s.h},
            {"w", s.w},
            {"layout", s.spatial ? "NHWC" : "NC"},
            {"scale", scale}};
  }

  // A constant FP32 input, or kUnsupported naming `what`.
  static const Tensor& constant_of(const ir::Node& node, std::size_t i, std::string_view what) {
    const ir::Value* v = node.input(i);
    if (!v || !v->is_constant() || v->constant->dtype() != DType::kFloat32)
      unsupported(what, " must be a constant float32 tensor");
    return *v->constant;
  }

  std::string unique_tensor_name(const std::string& hint) {
    std::string name = hint;
    for (int i = 1; reserved_names_.contains(name) || tensor_names_.contains(name); ++i)
      name = cat(hint, ":storage", i == 1 ? "" : std::to_string(i));
    tensor_names_.insert(name);
    return name;
  }

  int add_tensor(std::string name, DType dtype, std::string layout, std::vector<std::int64_t> dims,
                 std::optional<std::int64_t> padding) {
    const int id = static_cast<int>(plan_.tensors.size());
    plan_.tensors.push_back(plan::TensorDesc{.id = id,
                                             .name = std::move(name),
                                             .dtype = dtype,
                                             .layout = std::move(layout),
                                             .dims = std::move(dims),
                                             .channel_padding_to = padding});
    return id;
  }

  // A storage tensor for `geometry` (its tensor field ignored), named `hint`.
  Lowered storage_tensor(const std::string& hint, Lowered geometry) {
    const std::optional<std::int64_t> padding =
        geometry.c_pad != geometry.c ? std::optional(geometry.c_pad) : std::nullopt;
    std::vector<std::int64_t> dims{batch_, geometry.h, geometry.w, geometry.c};
    if (!geometry.spatial) dims = {batch_, geometry.c};
    geometry.tensor =
        add_tensor(unique_tensor_name(hint), geometry.int8 ? options_.quantized : storage_,
                   geometry.spatial ? "NHWC" : "NC", std::move(dims), padding);
    return geometry;
  }

  // Defines `value` as a new storage tensor of `geometry`.
  const Lowered& define(const ir::Value* value, const Lowered& geometry) {
    return values_[value] = storage_tensor(value->name, geometry);
  }

  // After a failure: guesses the outputs' geometry from their IR shapes, so
  // that readers are still judged on their own.
  void define_placeholders(const ir::Node& node) {
    for (const ir::Value* v : node.outputs) {
      if (values_.contains(v) || v->is_constant()) continue;
      const ir::Shape& s = v->shape;
      const bool known =
          s.rank() >= 2 && std::all_of(s.dims().begin() + 1, s.dims().end(),
                                       [](const ir::Dim& d) { return d.is_known(); });
      if (!known || (s.rank() != 2 && s.rank() != 4)) continue;
      Lowered l{.spatial = s.rank() == 4, .c = s[1].size, .c_pad = round_up(s[1].size, align_)};
      if (l.spatial) {
        l.h = s[2].size;
        l.w = s[3].size;
      }
      values_[v] = l;
    }
  }

  void add_layer(const std::string& hint, std::string kind, std::vector<int> inputs,
                 std::vector<int> outputs, const json& params,
                 std::vector<plan::WeightRef> weights = {}) {
    std::string name = hint;
    for (int i = 2; layer_names_.contains(name); ++i)
      name = cat(hint, "#", i);
    layer_names_.insert(name);
    plan_.layers.push_back(plan::LayerDesc{.name = name,
                                           .kind = std::move(kind),
                                           .inputs = std::move(inputs),
                                           .outputs = std::move(outputs),
                                           .params = params.dump(),
                                           .weights = std::move(weights),
                                           .tactic = "{}"});
  }

  plan::WeightRef add_weights(std::span<const float> values, DType dtype,
                              std::vector<std::int64_t> dims) {
    return append_weights(plan_.weights, values, dtype, std::move(dims));
  }

  // ---- Graph inputs and outputs -----------------------------------------------

  void lower_input(const ir::Value& input) {
    if (input.dtype != DType::kFloat32)
      unsupported("has dtype ", to_string(input.dtype), "; the GPU engine takes float32 inputs");
    const std::size_t rank = input.shape.rank();
    if (rank != 4 && rank != 2)
      unsupported("has shape ", to_string(input.shape), "; expected NCHW or [N, C]");
    Lowered g{.spatial = rank == 4, .c = static_dim(input, 1)};
    // An RGB input pads to 4 channels, not 8, even in FP16: cuDNN's stem
    // kernels take C = 4, and the 7x7 stem ran 0.62 -> 0.42 ms at batch 128
    // on an H100 (ResNet-18, 2026-11-26, in one run), the whole net 2.62 ->
    // 2.42 ms.
    g.c_pad = round_up(g.c, g.c <= 4 ? 4 : align_);
    if (g.spatial) {
      g.h = static_dim(input, 2);
      g.w = static_dim(input, 3);
    }
    const std::int64_t n = batch_dim(input.shape);
    std::vector<std::int64_t> dims{n, g.c, g.h, g.w};
    if (!g.spatial) dims = {n, g.c};
    const int user = add_tensor(input.name, DType::kFloat32, g.spatial ? "NCHW" : "NC",
                                std::move(dims), std::nullopt);
    plan_.io.push_back({.name = input.name, .tensor_id = user, .is_input = true});
    const Lowered& stored = define(&input, g);
    add_layer(cat("reformat_in:", input.name), "reformat_in", {user}, {stored.tensor},
              reformat_params(stored, g.spatial ? "NCHW" : "NC"));
  }

  void lower_output(const ir::Value& output) {
    if (output.is_constant()) unsupported("is a constant; the GPU engine computes every output");
    if (!values_.contains(&output)) throw UpstreamFailed{};
    const Lowered& s = float_view(&output);
    // The user's layout follows the model: a [N, C, 1, 1] global pool output
    // stays NCHW although the engine stores it as NC (the same bytes).
    const bool nchw = output.shape.rank() == 4;
    if (!nchw && s.spatial) unsupported("is NHWC inside the engine but rank ", output.shape.rank());
    std::vector<std::int64_t> dims{batch_dim(output.shape), s.c, s.h, s.w};
    if (!nchw) dims = {batch_dim(output.shape), s.c};
    const int user = add_tensor(output.name, DType::kFloat32, nchw ? "NCHW" : "NC", std::move(dims),
                                std::nullopt);
    add_layer(cat("reformat_out:", output.name), "reformat_out", {s.tensor}, {user},
              reformat_params(s, nchw ? "NCHW" : "NC"));
    plan_.io.push_back({.name = output.name, .tensor_id = user, .is_input = false});
  }

  static json reformat_params(const Lowered& s, const char* layout) {
    return {{"c", s.c}, {"c_pad", s.c_pad}, {"h", s.h}, {"w", s.w}, {"layout", layout}};
  }

  void add_profile() {
    plan::Profile profile;
    for (const plan::IoBinding& io : plan_.io) {
      const auto& dims = plan_.tensors[static_cast<std::size_t>(io.tensor_id)].dims;
      if (!io.is_input || dims.empty()) continue;
      // A model exported with a fixed batch gets the profile [b, b, b].
      plan::ProfileDim range{dims, dims, dims};
      if (dims[0] == -1) {
        range.min[0] = 1;
        range.opt[0] = range.max[0] = options_.max_batch;
      }
      profile.inputs[io.name] = std::move(range);
    }
    plan_.profiles.push_back(std::move(profile));
  }

  // ---- Layers -----------------------------------------------------------------

  void lower_conv(const ir::Node& node);
  std::optional<std::pair<float, float>> int8_conv_scales(const ir::Node& node, std::int64_t groups,
                                                          const Window2d& win,
                                                          const Activation& act) const;
  void lower_conv_int8(const ir::Node& node, const Tensor& w, const Tensor* bias,
                       std::int64_t groups, const Window2d& win, const ops::WindowAttributes& attrs,
                       const Activation& act, float x_scale, float y_scale);
  void lower_pool(const ir::Node& node);
  void lower_global_avg_pool(const ir::Node& node);
  void lower_gemm(const ir::Node& node);
  void lower_add(const ir::Node& node);
  void lower_activation(const ir::Node& node);
  void lower_identity(const ir::Node& node);
  void lower_to_nc_alias(const ir::Node& node);
  void add_eltwise(const std::string& name, const std::vector<int>& inputs, int output,
                   const Activation& act);

  const ir::Graph& graph_;
  LowerOptions options_;
  DType storage_;
  std::int64_t align_;
  std::int64_t batch_ = -1;
  plan::Plan plan_;
  std::unordered_map<const ir::Value*, Lowered> values_;
  std::unordered_map<const ir::Value*, Lowered> float_views_;  // of INT8 values
  std::map<std::pair<const ir::Value*, float>, Lowered> int8_views_;
  std::unordered_set<const ir::Node*> absorbed_;
  std::set<std::string, std::less<>> reserved_names_, tensor_names_, layer_names_;
  std::vector<std::string> problems_;
};

Window2d resolve_window(const ir::Node& node, const ops::WindowAttributes& attrs,
                        const Lowered& x) {
  return {ops::resolve_axis(node, attrs, 0, x.h), ops::resolve_axis(node, attrs, 1, x.w)};
}

void put_window(json& params, const Window2d& win) {
  params["stride_h"] = win.h.stride;
  params["stride_w"] = win.w.stride;
  params["dil_h"] = win.h.dilation;
  params["dil_w"] = win.w.dilation;
  params["pad_top"] = win.h.pad_begin;
  params["pad_left"] = win.w.pad_begin;
  params["pad_bottom"] = win.h.pad_end;
  params["pad_right"] = win.w.pad_end;
  params["in_h"] = win.h.in;
  params["in_w"] = win.w.in;
  params["out_h"] = win.h.out;
  params["out_w"] = win.w.out;
}

// SAME pads depend on the input size: the mode is kept so that
// builder/respecialize.h can recompute them for another height and width.
void put_auto_pad(json& params, const ops::WindowAttributes& attrs) {
  if (attrs.auto_pad == ops::AutoPad::kSameUpper) params["auto_pad"] = "SAME_UPPER";
  if (attrs.auto_pad == ops::AutoPad::kSameLower) params["auto_pad"] = "SAME_LOWER";
}

// The "conv" params (lower.h) of a conv reading `x` with filter `f`.
json conv_params(const Lowered& x, std::int64_t k, const PackedFilter& f, bool has_bias,
                 bool has_residual, const Window2d& win, const Activation& act) {
  json params = {{"c", x.c},
                 {"c_pad", x.c_pad},
                 {"k", k},
                 {"k_pad", f.k_pad},
                 {"r", f.r},
                 {"s", f.s},
                 {"groups", f.groups},
                 {"has_bias", has_bias},
                 {"has_residual", has_residual}};
  put_window(params, win);
  put_activation(params, act);
  return params;
}

void Lowerer::lower_conv(const ir::Node& node) {
  const Lowered& stored = stored_input(node, 0);  // its geometry; INT8 or not
  if (!stored.spatial) unsupported("reads a [N, C] tensor; GPU convolutions read NHWC");
  const Tensor& w = constant_of(node, 1, "the weights W");
  if (w.rank() != 4)
    unsupported("only 2-D convolutions run on the GPU, W is ", to_string(w.extents()));
  const std::int64_t groups = node.attributes.get_int("group", 1);
  const std::int64_t k = w.extents()[0];
  if (groups < 1 || w.extents()[1] * groups != stored.c || k % groups != 0)
    fail(ErrorKind::kInvalidModel, "W ", to_string(w.extents()), " with group ", groups,
         " does not fit ", stored.c, " input channels");
  const ops::WindowAttributes attrs = ops::read_window_attributes(node, 2, {.has_ceil_mode = false},
                                                                  {w.extents()[2], w.extents()[3]});
  const Window2d win = resolve_window(node, attrs, stored);
  const bool has_bias = node.input(2) != nullptr;
  const Tensor* bias = has_bias ? &constant_of(node, 2, "the bias B") : nullptr;
  const bool fused = is_anvil(node, "FusedConv");
  const Activation act = fused ? read_activation(node.attributes) : Activation{};
  const bool has_residual = fused && node.input(3) != nullptr;
  if (bias && bias->element_count() != k)
    fail(ErrorKind::kInvalidModel, "bias B has ", bias->element_count(), " entries, expected ", k);
  if (const auto scales = int8_conv_scales(node, groups, win, act))
    return lower_conv_int8(node, w, bias, groups, win, attrs, act, scales->first, scales->second);
  const Lowered x = input_of(node, 0);
  const PackedFilter f = pack_conv_filter(w, groups, x.c_pad, align_);
  const Lowered out{.spatial = true, .c = k, .c_pad = f.k_pad, .h = win.h.out, .w = win.w.out};
  std::vector<int> inputs{x.tensor};
  if (has_residual) {
    const Lowered& r = input_of(node, 3);
    if (!r.same_geometry(out))
      unsupported("the residual's storage (", r.c_pad, " channels of ", r.h, "x", r.w,
                  ") differs from the output's (", out.c_pad, " of ", out.h, "x", out.w, ")");
    inputs.push_back(r.tensor);
  }

  std::vector<float> b(static_cast<std::size_t>(f.k_pad), 0.0f);
  if (bias) std::copy_n(bias->data<float>(), k, b.begin());
  std::vector<plan::WeightRef> weights{
      add_weights(f.values, storage_, {f.k_pad, f.r, f.s, f.c_filter}),
      add_weights(b, DType::kFloat32, {f.k_pad})};
  json params = conv_params(x, k, f, has_bias, has_residual, win, act);
  put_auto_pad(params, attrs);
  const Lowered& y = define(node.outputs[0], out);
  add_layer(node.name, "conv", std::move(inputs), {y.tensor}, params, std::move(weights));
}

// The INT8 scales of a conv's input and output when it runs in INT8 (see
// LowerOptions::int8_scales), else nothing: it stays in the storage type.
std::optional<std::pair<float, float>> Lowerer::int8_conv_scales(const ir::Node& node,
                                                                 std::int64_t groups,
                                                                 const Window2d& win,
                                                                 const Activation& act) const {
  const auto& scales = options_.int8_scales;
  if (scales.empty() || options_.int8_excluded.contains(node.name)) return std::nullopt;
  const auto x = scales.find(node.input(0)->name);
  const auto y = scales.find(node.outputs[0]->name);
  if (x == scales.end() || y == scales.end()) return std::nullopt;
  // cuDNN adds a residual to an INT8 result only unscaled (docs/INT8.md):
  // quant::int8_activation_scales gives a residual its output's scale.
  const ir::Value* residual = node.input(3);
  if (residual) {
    const auto r = scales.find(residual->name);
    if (r == scales.end() || r->second != y->second) return std::nullopt;
  }
  const bool symmetric = win.h.pad_begin == win.h.pad_end && win.w.pad_begin == win.w.pad_end;
  const bool reads_graph_input =
      std::find(graph_.inputs.begin(), graph_.inputs.end(), node.input(0)) != graph_.inputs.end();
  if (groups != 1 || !symmetric || (act.name != "relu" && act.name != "none") ||
      (reads_graph_input && !options_.int8_first_layer))
    return std::nullopt;
  // FP8 engines want 16-byte channel rows; the FP16 storage pads to 8 only,
  // and a quantized tensor keeps its float view's padding, so a conv whose
  // padded channels are not multiples of 16 stays in FP16.
  if (options_.quantized == DType::kFloat8E4M3) {
    const std::int64_t c_pad = values_.at(node.input(0)).c_pad;
    const std::int64_t k_pad = round_up(node.input(1)->constant->extents()[0], align_);
    if (c_pad % kFp8ChannelMultiple != 0 || k_pad % kFp8ChannelMultiple != 0) return std::nullopt;
  }
  return std::make_pair(x->second, y->second);
}

void Lowerer::lower_conv_int8(const ir::Node& node, const Tensor& w, const Tensor* bias,
                              std::int64_t groups, const Window2d& win,
                              const ops::WindowAttributes& attrs, const Activation& act,
                              float x_scale, float y_scale) {
  const Lowered& x = int8_view(runtime_input(node, 0), x_scale);
  const std::int64_t k = w.extents()[0];
  const PackedFilter f = pack_conv_filter(w, groups, x.c_pad, align_);
  const quant::Int8Filter q = quant::quantize_filter(f.values, f.k_pad, options_.quantized);
  const std::vector<float> w_scales(q.scales.begin(), q.scales.begin() + k);
  const std::vector<float> b =
      bias ? std::vector<float>(bias->data<float>(), bias->data<float>() + k)
           : std::vector<float>{};
  const quant::Int8Requantization requant =
      quant::fold_requantization(x_scale, w_scales, b, y_scale, k, f.k_pad);
  Lowered out{.spatial = true, .c = k, .c_pad = f.k_pad, .h = win.h.out, .w = win.w.out};
  out.int8 = true;
  out.scale = y_scale;
  std::vector<int> inputs{x.tensor};
  const bool has_residual = node.input(3) != nullptr;
  if (has_residual) {
    const Lowered& r = int8_view(runtime_input(node, 3), y_scale);
    if (!r.same_geometry(out))
      unsupported("the residual's storage (", r.c_pad, " channels of ", r.h, "x", r.w,
                  ") differs from the output's (", out.c_pad, " of ", out.h, "x", out.w, ")");
    inputs.push_back(r.tensor);
  }
  std::vector<plan::WeightRef> weights{
      add_weights(q.values, options_.quantized, {f.k_pad, f.r, f.s, f.c_filter}),
      add_weights(requant.scale, DType::kFloat32, {f.k_pad}),
      add_weights(requant.bias, DType::kFloat32, {f.k_pad})};
  json params = conv_params(x, k, f, bias != nullptr, has_residual, win, act);
  put_auto_pad(params, attrs);
  params["x_scale"] = x_scale;
  params["y_scale"] = y_scale;
  // Written for FP8 only, so that INT8 plans stay what they were.
  if (options_.quantized == DType::kFloat8E4M3) params["element"] = to_string(options_.quantized);
  const Lowered& y = define(node.outputs[0], out);
  add_layer(node.name, "conv_int8", std::move(inputs), {y.tensor}, params, std::move(weights));
}

void Lowerer::lower_pool(const ir::Node& node) {
  const Lowered x = input_of(node, 0);
  if (!x.spatial) unsupported("reads a [N, C] tensor; GPU pooling reads NHWC");
  if (node.outputs.size() > 1) unsupported("the Indices output is not supported");
  const bool max = node.op_type == "MaxPool";
  const ops::WindowRules rules{.has_ceil_mode = true, .has_dilations = max || node.opset >= 19};
  const ops::WindowAttributes attrs = ops::read_window_attributes(node, 2, rules);
  const Window2d win = resolve_window(node, attrs, x);
  json params = {{"mode", max ? "max" : "avg"},
                 {"kernel_h", win.h.kernel},
                 {"kernel_w", win.w.kernel},
                 {"ceil_mode", attrs.ceil_mode},
                 {"count_include_pad", node.attributes.get_int("count_include_pad", 0) == 1},
                 {"c", x.c},
                 {"c_pad", x.c_pad}};
  put_window(params, win);
  put_auto_pad(params, attrs);
  Lowered out = x;
  out.h = win.h.out;
  out.w = win.w.out;
  const Lowered& y = define(node.outputs[0], out);
  add_layer(node.name, "pool", {x.tensor}, {y.tensor}, params);
}

void Lowerer::lower_global_avg_pool(const ir::Node& node) {
  // An INT8 input is averaged as it is stored, with no dequantize before.
  const Lowered& stored = stored_input(node, 0);
  const bool int8 = stored.int8 && options_.quantized == DType::kInt8;
  const Lowered x = int8 ? stored : input_of(node, 0);
  if (!x.spatial) unsupported("reads a [N, C] tensor; expected NCHW");
  const Lowered& y = define(node.outputs[0], Lowered{.spatial = false, .c = x.c, .c_pad = x.c_pad});
  json params = {{"c", x.c}, {"c_pad", x.c_pad}, {"h", x.h}, {"w", x.w}};
  if (int8) params["scale"] = x.scale;
  add_layer(node.name, int8 ? "global_avg_pool_int8" : "global_avg_pool", {x.tensor}, {y.tensor},
            params);
}

// Gemm's C as a per-column bias, or kUnsupported when it varies per row.
std::vector<float> gemm_bias(const ir::Node& node, std::int64_t n, std::int64_t n_pad, float beta) {
  std::vector<float> bias(static_cast<std::size_t>(n_pad), 0.0f);
  if (!node.input(2)) return bias;
  const ir::Value* cv = node.input(2);
  if (!cv->is_constant() || cv->constant->dtype() != DType::kFloat32)
    unsupported("the bias C must be a constant float32 tensor");
  const Tensor& c = *cv->constant;
  const std::int64_t count = c.element_count();
  const bool per_row = c.rank() == 2 && c.extents()[0] != 1;
  if (per_row || (count != 1 && count != n))
    unsupported("the bias C ", to_string(c.extents()), " must broadcast as one row of ", n);
  for (std::int64_t j = 0; j < n; ++j)
    bias[static_cast<std::size_t>(j)] = beta * c.data<float>()[count == 1 ? 0 : j];
  return bias;
}

void Lowerer::lower_gemm(const ir::Node& node) {
  const Lowered x = input_of(node, 0);
  if (x.spatial)
    unsupported(
        "reads an NHWC tensor; GPU gemms read [N, K] (e.g. after GlobalAveragePool + "
        "Flatten)");
  if (node.attributes.get_int("transA", 0) != 0) unsupported("transA=1 is not supported");
  const Tensor& b = constant_of(node, 1, "the weights B");
  if (b.rank() != 2) fail(ErrorKind::kInvalidModel, "B must be 2-D, got ", to_string(b.extents()));
  const bool trans_b = node.attributes.get_int("transB", 0) != 0;
  const std::int64_t k = b.extents()[trans_b ? 1 : 0];
  const std::int64_t n = b.extents()[trans_b ? 0 : 1];
  if (k != x.c)
    fail(ErrorKind::kInvalidModel, "B ", to_string(b.extents()), " does not fit ", x.c,
         " input features");
  const std::int64_t n_pad = round_up(n, align_);
  const float alpha = node.attributes.get_float("alpha", 1.0f);
  const std::vector<float> bias =
      gemm_bias(node, n, n_pad, node.attributes.get_float("beta", 1.0f));
  const Activation act =
      is_anvil(node, "FusedGemm") ? read_activation(node.attributes) : Activation{};
  const bool relu = act.name == "relu";
  const bool separate_activation = act.name != "none" && !relu;

  std::vector<plan::WeightRef> weights{
      add_weights(pack_gemm_weights(b, trans_b, alpha, x.c_pad, n_pad), storage_, {n_pad, x.c_pad}),
      add_weights(bias, DType::kFloat32, {n_pad})};
  const json params = {{"k", k},
                       {"k_pad", x.c_pad},
                       {"n", n},
                       {"n_pad", n_pad},
                       {"has_bias", node.input(2) != nullptr},
                       {"relu", relu},
                       {"alpha", 1.0f},
                       {"beta", 1.0f}};
  const Lowered out{.spatial = false, .c = n, .c_pad = n_pad};
  const ir::Value* y_value = node.outputs[0];
  const int product = separate_activation ? storage_tensor(cat(y_value->name, ":gemm"), out).tensor
                                          : define(y_value, out).tensor;
  add_layer(node.name, "gemm", {x.tensor}, {product}, params, std::move(weights));
  if (separate_activation)
    add_eltwise(cat(node.name, ":activation"), {product}, define(y_value, out).tensor, act);
}

void Lowerer::add_eltwise(const std::string& name, const std::vector<int>& inputs, int output,
                          const Activation& act) {
  json params = {{"has_second_input", inputs.size() == 2}};
  put_activation(params, act);
  add_layer(name, "eltwise", inputs, {output}, params);
}

void Lowerer::lower_add(const ir::Node& node) {
  const Lowered a = input_of(node, 0);
  const Lowered b = input_of(node, 1);
  if (node.inputs[0]->shape != node.inputs[1]->shape || !a.same_geometry(b))
    unsupported("broadcasting Add (", to_string(node.inputs[0]->shape), " + ",
                to_string(node.inputs[1]->shape), ") is not supported");
  // An activation that only this Add feeds runs in the same layer.
  const ir::Value* result = node.outputs[0];
  Activation act;
  ir::Attributes epilogue;
  ir::Node* next = passes::sole_reader(graph_, result);
  if (next && passes::absorb_activation(*next, result, epilogue)) {
    act = read_activation(epilogue);
    absorbed_.insert(next);
    result = next->outputs[0];
  }
  add_eltwise(node.name, {a.tensor, b.tensor}, define(result, a).tensor, act);
}

void Lowerer::lower_activation(const ir::Node& node) {
  const Lowered x = input_of(node, 0);
  ir::Attributes epilogue;
  if (!passes::absorb_activation(node, node.input(0), epilogue))
    unsupported("only Clip with constant bounds runs on the GPU");
  add_eltwise(node.name, {x.tensor}, define(node.outputs[0], x).tensor, read_activation(epilogue));
}

void Lowerer::lower_identity(const ir::Node& node) {
  const Lowered x = input_of(node, 0);
  for (std::size_t i = 1; i < node.outputs.size(); ++i)
    if (passes::reader_count(graph_, node.outputs[i]) != 0)
      unsupported("output '", node.outputs[i]->name, "' (a dropout mask) is not supported");
  values_[node.outputs[0]] = x;
}

void Lowerer::lower_to_nc_alias(const ir::Node& node) {
  const Lowered x = input_of(node, 0);
  const ir::Shape& out = node.outputs[0]->shape;
  const bool same_nc = !x.spatial && out.rank() == 2 && out[1].is_known() && out[1].size == x.c;
  if (!same_nc)
    unsupported("reshapes ", to_string(node.inputs[0]->shape), " to ", to_string(out),
                "; the GPU engine only aliases [N, C] to [N, C] (e.g. Flatten after "
                "GlobalAveragePool)");
  values_[node.outputs[0]] = x;
}

}  // namespace

plan::Plan lower_graph(const ir::Graph& graph, const LowerOptions& options) {
  if (options.max_batch < 1)
    fail(ErrorKind::kInvalidArgument, "max batch ", options.max_batch, " must be at least 1");
  return Lowerer(graph, options).run();
}

std::size_t tensor_bytes(const plan::TensorDesc& tensor, std::int64_t batch) {
  if (tensor.dims.empty()) return 0;
  const std::size_t channel_axis = tensor.layout == "NHWC" ? 3 : 1;
  std::int64_t elements = tensor.dims[0] == -1 ? batch : tensor.dims[0];
  for (std::size_t d = 1; d < tensor.dims.size(); ++d)
    elements *=
        d == channel_axis ? tensor.channel_padding_to.value_or(tensor.dims[d]) : tensor.dims[d];
  return static_cast<std::size_t>(elements) * size_of(tensor.dtype);
}

MemoryPlan plan_arena(const plan::Plan& plan, std::int64_t batch) {
  std::vector<Lifetime> lifetimes(plan.tensors.size(), Lifetime{0, -1, -1});
  // A tensor lives over every layer its users may run beside (auxiliary
  // streams), so that no tensor of a concurrent layer shares its memory.
  const std::vector<plan::LayerWindow> windows = plan::concurrency_windows(plan);
  auto touch = [&](int id, const plan::LayerWindow& window) {
    Lifetime& l = lifetimes[static_cast<std::size_t>(id)];
    l.first = l.first < 0 ? window.first : std::min(l.first, window.first);
    l.last = std::max(l.last, window.last);
  };
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    for (const int id : plan.layers[i].outputs)
      touch(id, windows[i]);
    for (const int id : plan.layers[i].inputs)
      touch(id, windows[i]);
  }
  std::vector<bool> is_io(plan.tensors.size(), false);
  for (const plan::IoBinding& io : plan.io)
    is_io[static_cast<std::size_t>(io.tensor_id)] = true;
  for (std::size_t t = 0; t < lifetimes.size(); ++t) {
    Lifetime& l = lifetimes[t];
    // A tensor no layer touches (one a fusion bypassed) takes no memory.
    const bool unused = l.first < 0;
    if (unused) l.first = l.last = 0;
    l.bytes = is_io[t] || unused ? 0 : tensor_bytes(plan.tensors[t], batch);
  }
  MemoryPlan arena = plan_memory(lifetimes);
  for (std::size_t t = 0; t < lifetimes.size(); ++t)
    if (is_io[t]) arena.offsets[t] = 0;
  return arena;
}

}  // namespace anvil::builder
