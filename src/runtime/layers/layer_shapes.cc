#include "runtime/layers/layer_shapes.h"

#include "builder/memory_plan.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

using cuda::kernels::Activation;

namespace {

// The fields a conv layer's params give cuda::ConvShape and
// cuda::QuantizedConvShape alike (they name them alike): channels, input size,
// filter, the start pads, strides, dilations, groups, bias and residual.
template <typename Shape>
void read_conv_params(const nlohmann::json& p, const std::string& name, Shape& s) {
  auto i = [&](const char* key) { return param<std::int64_t>(p, key, name); };
  s.c = i("c_pad");
  s.h = i("in_h");
  s.w = i("in_w");
  s.k = i("k_pad");
  s.r = i("r");
  s.s = i("s");
  s.pad_h = i("pad_top");
  s.pad_w = i("pad_left");
  s.stride_h = i("stride_h");
  s.stride_w = i("stride_w");
  s.dil_h = i("dil_h");
  s.dil_w = i("dil_w");
  s.groups = i("groups");
  s.has_bias = param<bool>(p, "has_bias", name);
  s.has_residual = param<bool>(p, "has_residual", name);
}

}  // namespace

ConvLayerShape conv_layer_shape(const nlohmann::json& p, const std::string& name, bool fp16,
                                bool allow_tf32) {
  auto i = [&](const char* key) { return param<std::int64_t>(p, key, name); };
  ConvLayerShape out;
  cuda::ConvShape& s = out.shape;
  read_conv_params(p, name, s);
  s.pad_h_end = i("pad_bottom");
  s.pad_w_end = i("pad_right");
  s.fp16 = fp16;
  s.allow_tf32 = allow_tf32;
  const Activation act = activation_of(param<std::string>(p, "activation", name), name);
  out.activation_params = activation_params(p, name);
  s.act = cuda::cudnn_fuses(act) ? act : Activation::kNone;
  s.act_alpha = out.activation_params.alpha;
  s.clip_min = out.activation_params.clip_min;
  s.clip_max = out.activation_params.clip_max;
  out.post_activation = cuda::cudnn_fuses(act) ? Activation::kNone : act;
  cuda::check_fused_conv_shape(s);
  return out;
}

std::optional<ConvAsGemm> conv_as_gemm(const ConvLayerShape& conv) {
  const cuda::ConvShape& s = conv.shape;
  // A padding end of -1 means "as at the start" (cuda::ConvShape).
  const bool unpadded = s.pad_h == 0 && s.pad_w == 0 && s.pad_h_end <= 0 && s.pad_w_end <= 0;
  if (s.r != 1 || s.s != 1 || s.stride_h != 1 || s.stride_w != 1 || s.dil_h != 1 || s.dil_w != 1 ||
      s.groups != 1 || !unpadded)
    return std::nullopt;
  // shape.act holds what cuDNN fuses, post_activation the rest: one of them is kNone.
  const Activation act = s.act != Activation::kNone ? s.act : conv.post_activation;
  ConvAsGemm out;
  cuda::GemmShape& g = out.gemm;
  g.m = s.n * s.h * s.w;
  g.n = s.k;
  g.k = s.c;
  g.fp16 = s.fp16;
  g.allow_tf32 = s.allow_tf32;
  g.has_bias = s.has_bias;
  g.has_residual = s.has_residual;
  g.relu = act == Activation::kRelu;
  out.post_activation = g.relu ? Activation::kNone : act;
  return out;
}

UnfusedConv unfused_conv(const ConvLayerShape& conv) {
  UnfusedConv out;
  out.conv = conv.shape;
  out.conv.has_bias = false;
  out.conv.has_residual = false;
  out.conv.act = Activation::kNone;
  // shape.act holds what cuDNN fuses, post_activation the rest: one of them is kNone.
  out.act = conv.shape.act != Activation::kNone ? conv.shape.act : conv.post_activation;
  return out;
}

cuda::QuantizedConvShape int8_conv_layer_shape(const nlohmann::json& p, const std::string& name) {
  auto i = [&](const char* key) { return param<std::int64_t>(p, key, name); };
  if (i("pad_top") != i("pad_bottom") || i("pad_left") != i("pad_right"))
    fail(ErrorKind::kInvalidArgument, "plan layer '", name,
         "': an INT8 or FP8 convolution needs symmetric pads");
  const std::string act = param<std::string>(p, "activation", name);
  if (act != "relu" && act != "none")
    fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': activation '", act,
         "' has no INT8 or FP8 convolution (relu or none)");
  cuda::QuantizedConvShape s;
  read_conv_params(p, name, s);
  s.relu = act == "relu";
  s.output = cuda::QuantizedConvOutput::kQuantized;
  // Plans from before FP8 have no "element": INT8.
  const std::string element =
      p.contains("element") ? param<std::string>(p, "element", name) : "int8";
  if (element == to_string(DType::kFloat8E4M3))
    s.element = DType::kFloat8E4M3;
  else if (element != "int8")
    fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': element '", element,
         "' (expected int8 or float8e4m3fn)");
  cuda::check_quantized_conv_shape(s);
  return s;
}

cuda::GemmShape gemm_layer_shape(const nlohmann::json& p, const std::string& name,
                                 const std::string& kind, bool fp16, bool allow_tf32) {
  if (kind != "gemm" && kind != "gemm_output")
    fail(ErrorKind::kInvalidArgument, "plan layer '", name, "' of kind '", kind, "' is not a gemm");
  cuda::GemmShape s;
  s.m = 1;
  s.k = param<std::int64_t>(p, "k_pad", name);
  s.n = param<std::int64_t>(p, "n_pad", name);
  s.has_bias = param<bool>(p, "has_bias", name);
  s.relu = param<bool>(p, "relu", name);
  s.fp16 = fp16;
  s.allow_tf32 = allow_tf32;
  if (kind == "gemm_output") {
    s.float_output = fp16;
    s.y_alignment = builder::kIoAlignment;
  }
  return s;
}

}  // namespace anvil::runtime
