// Lowering: the CPU half of `anvil build`. An optimized IR graph (imported,
// then run through passes::PassManager) becomes a plan::Plan of GPU layers,
// tensors and packed weights; tactics are left "{}" for the GPU autotuner.
//
// ---- Engine conventions (the contract with the GPU runtime) -----------------
// Activations inside the engine are NHWC (rank 4) or NC (rank 2, e.g. after a
// global pool), stored in FP16 (LowerOptions::fp16) or FP32. Each tensor
// stores c_pad channels: its logical channel count rounded up to 8 (FP16) or
// 4 (FP32) so that tensor-core engines qualify (an input of up to 4 channels,
// RGB, pads to 4 in both: 3 -> 4);
// TensorDesc::dims are logical (dims in layout order, -1 for a dynamic batch)
// and TensorDesc::channel_padding_to is c_pad when c_pad != C. Heights and
// widths are concrete: a graph whose input H and W are symbolic is lowered
// at profile 0's opt shape (builder/spatial_dims.h), and every tensor dim and
// geometry param below (h, w, in_h, in_w, out_h, out_w, pads under auto_pad)
// describes that shape; builder/respecialize.h re-derives them for others. Padded
// channels: reformat_in writes zeros; every layer writes all c_pad channels of
// its outputs (conv: act(0 + residual) from zero filters and bias), and no
// padded channel ever reaches a real one, since the weights reading padded
// channels are zero. Users keep NCHW (or NC) FP32 inputs and outputs: those
// are the tensors the IO bindings name, and reformat layers convert.
//
// Every layer reads `inputs` and writes `outputs` (tensor ids, never in place).
// Params (LayerDesc::params, a JSON object) per kind:
//
//  "reformat_in"   the graph input (NCHW or NC, FP32) -> storage (NHWC or NC,
//                  c_pad channels, padding zeroed).
//                  {c, c_pad, h, w, layout: "NCHW" | "NC"}  (h = w = 1 for NC)
//  "conv"          2-D convolution + bias, + optional residual (inputs[1], the
//                  output's shape and padding), then activation:
//                  y = act(conv(x, W) + bias + residual).
//                  {c, c_pad, k, k_pad, r, s, in_h, in_w, out_h, out_w,
//                   pad_top, pad_left, pad_bottom, pad_right, stride_h, stride_w,
//                   dil_h, dil_w, groups, has_bias, has_residual,
//                   activation, alpha, beta, clip_min, clip_max
//                   [, auto_pad: "SAME_UPPER" | "SAME_LOWER"]}
//                  auto_pad (only when the model's is SAME_*): the pads are
//                  those it gives at in_h/in_w, recomputed at other sizes.
//                  c, k: the model's channels; c_pad: the input tensor's stored
//                  channels, k_pad: the output's. groups: what the engine runs,
//                  which may differ from the model's (see builder/weights.h,
//                  PackedFilter: depthwise convs get one group per stored
//                  channel, unaligned grouped convs are densified to 1).
//                  weights[0]: filter [k_pad, r, s, c_pad / groups] (KRSC), the
//                  storage dtype; weights[1]: bias [k_pad] FP32, always present
//                  (zeros where the model has none: has_bias = false lets the
//                  engine skip it).
//  "pool"          MaxPool / AveragePool 2-D, NHWC -> NHWC, channels as is.
//                  {mode: "max" | "avg", kernel_h, kernel_w, stride_h, stride_w,
//                   pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w,
//                   count_include_pad, ceil_mode, c, c_pad, in_h, in_w, out_h, out_w
//                   [, auto_pad] (as "conv")}
//                  Pads are the explicit ones (auto_pad resolved). With
//                  ceil_mode, out_h/out_w (ops/window.h, as the CPU op) may
//                  hold one more window than the pads give: it reads only the
//                  input; avg divides by the taps inside the input, or, with
//                  count_include_pad, inside the input and its explicit pads.
//  "global_avg_pool" NHWC [N, h, w, c_pad] -> NC [N, c_pad]. {c, c_pad, h, w}
//  "gemm"          NC [N, k_pad] -> NC [N, n_pad]: Y = act(alpha * X·W^T + beta * bias)
//                  {k, k_pad, n, n_pad, has_bias, relu, alpha, beta}
//                  weights[0]: W [n_pad, k_pad] row-major, storage dtype, with
//                  ONNX's transB and alpha folded in; weights[1]: bias [n_pad]
//                  FP32 with beta folded in (zeros when has_bias is false).
//                  alpha and beta are therefore always 1. relu: a fused Relu;
//                  another fused activation becomes an "eltwise" layer after.
//  "gemm_output"   a "gemm" writing the graph's FP32 output (NC, or NCHW of
//                  1 x 1) itself, with n = n_pad: the output's reformat_out
//                  folded in (builder/fold_output_reformat.h). In FP16 plans
//                  X and W are FP16, Y and the bias FP32.
//  "eltwise"       y = act(a + b), or act(a) without a second input; a, b and y
//                  have one shape and padding (no broadcasting).
//                  {activation, alpha, beta, clip_min, clip_max, has_second_input}
//  "conv_max_pool" ResNet's stem, FP16 only (builder/fuse_conv_max_pool.h):
//                  y = MaxPool(act(conv(x, W) + bias)) with the "conv" params
//                  and weights (7x7, stride 2, pad 3, c_pad 4, k_pad 64, relu
//                  or none) and the "pool" params under "pool" (max, 3x3,
//                  stride 2, pad 1). x is the FP16 NHWC tensor of 4 channels
//                  or, with two inputs, the engine's FP32 NCHW RGB input
//                  (input 0, converted as reformat_in would) with that FP16
//                  tensor as input 1, read instead where the context passes
//                  a null input 0 (a preformatted input).
//  "conv_max_pool_int8" the same writing INT8 (INT8 plans, where only a
//                  "quantize" read the pooled tensor), with {out_scale}: q =
//                  sat(rint(m / out_scale)) of the FP16 maximum m, the
//                  "quantize" arithmetic bit for bit.
//  "reformat_out"  storage (NHWC or NC) -> the graph output (NCHW or NC, FP32,
//                  padding dropped). {c, c_pad, h, w, layout: "NCHW" | "NC"}
//
// INT8 (LowerOptions::int8_scales, FP16 plans only; docs/INT8.md). An INT8
// tensor (dtype kInt8) holds q with real value scale * q, one scale per
// tensor; its geometry and channel padding are those of the FP16 tensor it
// replaces (padded channels hold 0).
//  "conv_int8"     a "conv" on INT8 tensors: x, residual (inputs[1]) and y are
//                  INT8, y and the residual with one scale (y_scale):
//                  y = sat(rint(act(acc[k] * scale[k] + bias[k] [+ residual]))),
//                  acc = the exact INT32 sum of x_q * w_q, act "relu" or
//                  "none", rint half to even, sat to [-128, 127]. The "conv"
//                  params with groups 1 and symmetric pads, plus
//                  {x_scale, y_scale} (what the folded vectors came from).
//                  weights[0]: filter [k_pad, r, s, c_pad] INT8 (KRSC),
//                  symmetric per output channel: w_q = sat127(rint(w / w_scale[k])),
//                  w_scale[k] = max|w[k]| / 127; weights[1]: scale [k_pad]
//                  FP32 = x_scale * w_scale[k] / y_scale; weights[2]: bias
//                  [k_pad] FP32 = b[k] / y_scale (quant::fold_requantization;
//                  zeros past k and where the model has no bias).
//                  FP8 (LowerOptions::quantized kFloat8E4M3): the same layer
//                  with params {element: "float8e4m3fn"} (absent: "int8"), x,
//                  residual, y and the filter float8e4m3fn, every "rint, sat"
//                  above the E4M3 conversion (nearest even, saturating to
//                  +-448; quant/fp8_e4m3.h), acc the FP32 sum, and 448 in
//                  place of 127 in w_scale; C and K padded to multiples of 16.
//  "quantize"      FP16 storage -> INT8 (or E4M3, by the output's dtype), same geometry:
//                  q = sat(rint(x / scale)) in FP32 arithmetic.
//                  {c, c_pad, h, w, layout: "NHWC" | "NC", scale}
//  "dequantize"    INT8 -> FP16 storage, same geometry: y = half(q * scale).
//                  {c, c_pad, h, w, layout: "NHWC" | "NC", scale}
//  "global_avg_pool_int8" a "global_avg_pool" of an INT8 tensor (not FP8),
//                  to FP16 storage: y = half(float(sum of q) * scale / (h * w)),
//                  the sum exact. {c, c_pad, h, w, scale}
//
// activation is one of "none", "relu", "clip", "leaky_relu", "sigmoid",
// "hard_sigmoid", "hard_swish" (cuda/kernels/activation.h's Activation),
// with the ONNX defaults filled in: alpha (LeakyRelu 0.01, HardSigmoid 0.2),
// beta (HardSigmoid 0.5), clip_min/clip_max (+-FLT_MAX when unbounded); 0 where
// the activation has no such parameter.
//
// Flatten, Reshape and Squeeze of an NC tensor to the same [N, C], Identity
// and Dropout are aliases: no layer, the reader uses the same tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "builder/memory_plan.h"
#include "ir/graph.h"
#include "plan/plan.h"

namespace anvil::builder {

struct LowerOptions {
  bool fp16 = false;  // FP16 storage and weights (else FP32)
  bool tf32 = true;   // lets FP32 convs and gemms use TF32 tensor cores
  std::int64_t max_batch = 1;
  // FP16: ResNet's stem conv + max pool as one layer (builder/fuse_conv_max_pool.h).
  bool fuse_conv_max_pool = true;
  // A classifier's FC layer writes the graph output itself (builder/fold_output_reformat.h).
  bool fold_output_reformat = true;
  // INT8 (needs fp16): value name -> scale (quant::int8_activation_scales).
  // A conv runs as "conv_int8" when its input and output (and residual) have
  // scales, it has one group, symmetric pads, a ReLU or no activation, it does
  // not read a graph input unless int8_first_layer, and int8_excluded does
  // not name it (its ONNX node name). Empty: no INT8 layers.
  std::map<std::string, float> int8_scales = {};
  std::set<std::string> int8_excluded = {};
  bool int8_first_layer = false;
  // The quantized element type of those layers and tensors: kInt8, or
  // kFloat8E4M3 for FP8 (--fp8), where int8_scales then hold FP8 scales
  // (amax / 448) and a conv also needs its input's and output's padded
  // channels to be multiples of 16 (cuda::kFp8ChannelMultiple).
  DType quantized = DType::kInt8;
};

// Lowers `graph` (shapes inferred; spatial dims static, the batch may be
// symbolic: fix symbolic heights and widths first with
// builder::fix_input_dims) into a plan without tactics, holding one profile:
// batch 1 to max_batch, timed at max_batch, the other dims as lowered (the
// builder then widens them to the user's ranges). Throws kUnsupported listing every node it
// cannot lower (its op type, name and why), kInvalidArgument for bad options.
plan::Plan lower_graph(const ir::Graph& graph, const LowerOptions& options);

// Bytes `tensor` takes at `batch` images, padded channels included.
std::size_t tensor_bytes(const plan::TensorDesc& tensor, std::int64_t batch);

// The activation arena of a plan at `batch` images: an offset per tensor
// (indexed by tensor id) from builder::plan_memory over the layers' lifetimes.
// Tensors bound to IO are the user's buffers: they get offset 0 and 0 bytes.
MemoryPlan plan_arena(const plan::Plan& plan, std::int64_t batch);

}  // namespace anvil::builder
