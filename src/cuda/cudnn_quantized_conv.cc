#include "cuda/cudnn_quantized_conv.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_engine.h"

namespace anvil::cuda {

namespace {

// Variant-pack keys of the graph's real tensors; virtual ones count from kFirstVirtual.
enum : std::int64_t {
  kX = 1,
  kW = 2,
  kScale = 3,
  kBias = 4,
  kResidual = 5,
  kY = 6,
  kFirstVirtual = 100
};

// The two spellings of the convolution's virtual output that cuDNN's own
// INT8 samples use: INT32 (cudnn-frontend) and FP32 (PyTorch).
enum class Accumulator { kInt32, kFloat };

const char* prefix(Accumulator a) {
  return a == Accumulator::kInt32 ? "i32" : "f32";
}

// An engine config of one of the two graphs, as identity() spells it:
// "<i32|f32>:" + EngineChoice::to_string().
struct Int8Choice {
  Accumulator acc = Accumulator::kInt32;
  EngineChoice engine;

  std::string identity() const { return cat(prefix(acc), ":", engine.to_string()); }
};

Int8Choice parse_identity(const std::string& identity) {
  constexpr std::string_view kExpected = "i32|f32:eng<index>:<knob>=<value>,...";
  Int8Choice choice;
  const std::string_view text = identity;
  if (text.starts_with("f32:"))
    choice.acc = Accumulator::kFloat;
  else if (!text.starts_with("i32:"))
    fail(ErrorKind::kInvalidArgument, "malformed cuDNN engine identity '", identity, "' (expected ",
         kExpected, ")");
  choice.engine = parse_engine_choice(text.substr(4), identity, kExpected);
  return choice;
}

cudnnDataType_t element_dtype(DType element) {
  return element == DType::kFloat8E4M3 ? CUDNN_DATA_FP8_E4M3 : CUDNN_DATA_INT8;
}

cudnnDataType_t output_dtype(const QuantizedConvShape& s) {
  switch (s.output) {
    case QuantizedConvOutput::kQuantized:
      return element_dtype(s.element);
    case QuantizedConvOutput::kHalf:
      return CUDNN_DATA_HALF;
    case QuantizedConvOutput::kFloat:
      return CUDNN_DATA_FLOAT;
  }
  fail(ErrorKind::kInternal, "unknown QuantizedConvOutput");
}

BackendDescriptor make_conv_desc(const QuantizedConvShape& s) {
  BackendDescriptor d(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute =
      s.element == DType::kFloat8E4M3 ? CUDNN_DATA_FLOAT : CUDNN_DATA_INT32;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  d.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  d.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  d.set_int64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
  d.set_int64s(CUDNN_ATTR_CONVOLUTION_DILATIONS, {s.dil_h, s.dil_w});
  d.set_int64s(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {s.stride_h, s.stride_w});
  d.set_int64s(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {s.pad_h, s.pad_w});
  d.set_int64s(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {s.pad_h, s.pad_w});
  d.finalize();
  return d;
}

BackendDescriptor make_pointwise_desc(cudnnPointwiseMode_t mode) {
  BackendDescriptor d(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  d.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  d.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  d.finalize();
  return d;
}

}  // namespace

std::int64_t round_up_channels(std::int64_t real, std::int64_t multiple) {
  if (real < 1 || multiple < 1)
    fail(ErrorKind::kInvalidArgument, "round_up_channels(", real, ", ", multiple,
         "): both must be positive");
  return (real + multiple - 1) / multiple * multiple;
}

std::int64_t channel_multiple(DType element) {
  if (element == DType::kInt8) return kInt8ChannelMultiple;
  if (element == DType::kFloat8E4M3) return kFp8ChannelMultiple;
  fail(ErrorKind::kInvalidArgument, "quantized convolution element ", to_string(element),
       ": expected int8 or float8e4m3fn");
}

const char* to_string(QuantizedConvOutput output) {
  switch (output) {
    case QuantizedConvOutput::kQuantized:
      return "int8";
    case QuantizedConvOutput::kHalf:
      return "fp16";
    case QuantizedConvOutput::kFloat:
      return "fp32";
  }
  return "?";
}

std::int64_t QuantizedConvShape::out_h() const {
  return (h + 2 * pad_h - dil_h * (r - 1) - 1) / stride_h + 1;
}

std::int64_t QuantizedConvShape::out_w() const {
  return (w + 2 * pad_w - dil_w * (s - 1) - 1) / stride_w + 1;
}

std::string QuantizedConvShape::describe() const {
  return cat(element == DType::kFloat8E4M3 ? "fp8" : "int8", " conv x[", n, ",", h, ",", w, ",", c,
             "] w[", k, ",", r, ",", s, ",", c, "] stride ", stride_h, "x", stride_w, " pad ",
             pad_h, "x", pad_w, " dilation ", dil_h, "x", dil_w, has_bias ? " +bias" : "",
             has_residual ? " +residual" : "", relu ? " relu" : "", " -> ",
             output == QuantizedConvOutput::kQuantized && element == DType::kFloat8E4M3
                 ? "fp8"
                 : to_string(output));
}

void check_quantized_conv_shape(const QuantizedConvShape& s) {
  const std::int64_t sizes[] = {s.n, s.h,        s.w,        s.c,     s.k,     s.r,
                                s.s, s.stride_h, s.stride_w, s.dil_h, s.dil_w, s.groups};
  if (std::any_of(std::begin(sizes), std::end(sizes), [](std::int64_t v) { return v < 1; }) ||
      s.pad_h < 0 || s.pad_w < 0 || s.out_h() < 1 || s.out_w() < 1)
    fail(ErrorKind::kInvalidArgument, s.describe(),
         ": sizes must be positive, pads >= 0, output non-empty");
  if (s.groups != 1)
    fail(ErrorKind::kUnsupported, s.describe(), ": groups ", s.groups,
         " (the quantized cuDNN convolution supports groups = 1 only; run it in FP16)");
  if (s.element != DType::kInt8 && s.element != DType::kFloat8E4M3)
    fail(ErrorKind::kInvalidArgument, s.describe(), ": element type ", to_string(s.element),
         " (expected int8 or float8e4m3fn)");
  const std::int64_t multiple = channel_multiple(s.element);
  if (s.c % multiple != 0 || s.k % multiple != 0)
    fail(ErrorKind::kUnsupported, s.describe(), ": cuDNN's ", to_string(s.element),
         " convolution needs C and K to be multiples of ", multiple,
         " (pad with zeros: round_up_channels)");
}

struct QuantizedConv::Graph {
  QuantizedConvShape shape;
  Accumulator acc = Accumulator::kInt32;
  std::vector<BackendDescriptor> parts;
  BackendDescriptor op_graph;
};

struct QuantizedConv::Plan : EnginePlan {};

namespace {

using Graph = QuantizedConv::Graph;
using Plan = QuantizedConv::Plan;

// conv -> *scale -> [+bias] -> [+residual] -> [relu] -> y; null with `why`
// set when cuDNN refuses the operation graph. `dynamic_shape` marks the graph
// as cuDNN's kernel cache requires.
std::shared_ptr<const Graph> build_graph(cudnnHandle_t handle, const QuantizedConvShape& s,
                                         Accumulator acc, bool dynamic_shape, std::string& why) {
  check_quantized_conv_shape(s);
  auto g = std::make_shared<Graph>();
  g->shape = s;
  g->acc = acc;
  g->parts.reserve(32);  // keep() hands out references that must stay valid
  auto keep = [&](BackendDescriptor d) -> const BackendDescriptor& {
    g->parts.push_back(std::move(d));
    return g->parts.back();
  };
  const std::vector<std::int64_t> out{s.n, s.k, s.out_h(), s.out_w()}, vec{1, s.k, 1, 1};
  const cudnnDataType_t y_type = output_dtype(s);
  const cudnnDataType_t q_type = element_dtype(s.element);
  const int steps = 2 + s.has_bias + s.has_residual + s.relu;  // conv and scale always
  int step = 0;
  auto next_output = [&](cudnnDataType_t virtual_type) -> const BackendDescriptor& {
    return ++step == steps ? keep(make_nhwc_tensor(kY, y_type, out, false))
                           : keep(make_nhwc_tensor(kFirstVirtual + step, virtual_type, out, true));
  };
  std::vector<cudnnBackendDescriptor_t> ops;

  const BackendDescriptor& x = keep(make_nhwc_tensor(kX, q_type, {s.n, s.c, s.h, s.w}, false));
  const BackendDescriptor& w = keep(make_nhwc_tensor(kW, q_type, {s.k, s.c, s.r, s.s}, false));
  const BackendDescriptor& conv_desc = keep(make_conv_desc(s));
  const BackendDescriptor* prev =
      &next_output(acc == Accumulator::kInt32 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT);
  BackendDescriptor conv(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const float alpha = 1.0f, beta = 0.0f;
  conv.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
  conv.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv_desc);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, *prev);
  conv.finalize();
  ops.push_back(keep(std::move(conv)).get());

  auto pointwise = [&](cudnnPointwiseMode_t mode, const BackendDescriptor* operand, float alpha2) {
    const BackendDescriptor& desc = keep(make_pointwise_desc(mode));
    const BackendDescriptor& y = next_output(CUDNN_DATA_FLOAT);
    BackendDescriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, desc);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *prev);
    if (operand) op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *operand);
    if (alpha2 != 1.0f) op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &alpha2);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    op.finalize();
    ops.push_back(keep(std::move(op)).get());
    prev = &y;
  };
  pointwise(CUDNN_POINTWISE_MUL, &keep(make_nhwc_tensor(kScale, CUDNN_DATA_FLOAT, vec, false)),
            1.0f);
  if (s.has_bias)
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_nhwc_tensor(kBias, CUDNN_DATA_FLOAT, vec, false)),
              1.0f);
  if (s.has_residual)
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_nhwc_tensor(kResidual, y_type, out, false)),
              s.residual_scale);
  if (s.relu) pointwise(CUDNN_POINTWISE_RELU_FWD, nullptr, 1.0f);

  g->op_graph = BackendDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  g->op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                  static_cast<std::int64_t>(ops.size()), ops.data());
  g->op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  // Set only when asked, so that the graph without a cache stays what it was.
  if (dynamic_shape)
    g->op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_IS_DYNAMIC_SHAPE_ENABLED, CUDNN_TYPE_BOOLEAN, 1,
                    &dynamic_shape);
  const cudnnStatus_t status = g->op_graph.try_finalize();
  if (status != CUDNN_STATUS_SUCCESS) {
    why = cudnn_status_text(status);
    return nullptr;
  }
  return g;
}

// The plan of one engine choice, or null with `why` set. Engines whose
// INT8x32 kernels need reordered filters or biases are refused: our INT8
// tensors are plain.
std::shared_ptr<const Plan> build_plan(cudnnHandle_t handle, const Graph& g,
                                       const Int8Choice& choice, std::string& why,
                                       const CudnnKernelCache* cache) {
  auto p = std::make_shared<Plan>();
  const EngineFilter plain = [](const EngineNotes& notes, std::string& reason) {
    if (!notes.has(CUDNN_BEHAVIOR_NOTE_REQUIRES_FILTER_INT8x32_REORDER) &&
        !notes.has(CUDNN_BEHAVIOR_NOTE_REQUIRES_BIAS_INT8x32_REORDER))
      return true;
    reason = cat("needs INT8x32-reordered filters/bias (notes ", notes.text(), ")");
    return false;
  };
  if (!build_engine_plan(handle, g.op_graph, choice.engine, choice.identity(), plain, *p, why,
                         cache))
    return nullptr;
  return p;
}

const char* mode_name(cudnnBackendHeurMode_t mode) {
  return mode == CUDNN_HEUR_MODE_A ? "A" : mode == CUDNN_HEUR_MODE_B ? "B" : "fallback";
}

}  // namespace

QuantizedConv::QuantizedConv(std::shared_ptr<const Graph> graph, std::shared_ptr<const Plan> plan)
    : graph_(std::move(graph)),
      plan_(std::move(plan)),
      identity_(plan_->identity),
      workspace_bytes_(plan_->workspace) {}

const QuantizedConvShape& QuantizedConv::shape() const {
  return graph_->shape;
}

const std::string& QuantizedConv::notes() const {
  return plan_->notes;
}

const std::string& QuantizedConv::kernel_cache_report() const {
  return plan_->kernel_cache;
}

QuantizedConv::Search QuantizedConv::search(cudnnHandle_t handle, const QuantizedConvShape& shape,
                                            int max_candidates, const CudnnKernelCache* cache) {
  Search result;
  std::set<std::string> seen;
  for (Accumulator acc : {Accumulator::kInt32, Accumulator::kFloat}) {
    if (acc == Accumulator::kInt32 && shape.element == DType::kFloat8E4M3) continue;
    std::string why;
    const std::shared_ptr<const Graph> graph =
        build_graph(handle, shape, acc, cache != nullptr, why);
    if (!graph) {
      result.log.push_back(cat(prefix(acc), cache ? " dynamic-shape" : "",
                               " graph: operation graph refused: ", why));
      continue;
    }
    for (cudnnBackendHeurMode_t mode :
         {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_FALLBACK}) {
      std::string status;
      const std::vector<EngineChoice> engines = heuristic_choices(graph->op_graph, mode, &status);
      result.log.push_back(cat(prefix(acc), " graph: heuristics ", mode_name(mode), ": ", status));
      for (const EngineChoice& engine : engines) {
        if (static_cast<int>(result.candidates.size()) >= max_candidates) return result;
        const Int8Choice choice{acc, engine};
        if (!seen.insert(choice.identity()).second) continue;
        if (auto plan = build_plan(handle, *graph, choice, why, cache))
          result.candidates.push_back(QuantizedConv(graph, std::move(plan)));
        else
          result.log.push_back(cat("  rejected ", choice.identity(), ": ", why));
      }
    }
  }
  return result;
}

std::vector<QuantizedConv> QuantizedConv::candidates(cudnnHandle_t handle,
                                                     const QuantizedConvShape& shape,
                                                     int max_candidates,
                                                     const CudnnKernelCache* cache) {
  return search(handle, shape, max_candidates, cache).candidates;
}

QuantizedConv QuantizedConv::from_identity(cudnnHandle_t handle, const QuantizedConvShape& shape,
                                           const std::string& identity,
                                           const CudnnKernelCache* cache) {
  const Int8Choice choice = parse_identity(identity);
  if (choice.acc == Accumulator::kInt32 && shape.element == DType::kFloat8E4M3)
    fail(ErrorKind::kInvalidArgument, shape.describe(), ": engine identity '", identity,
         "' names an INT32 accumulator, which FP8 convolutions do not have");
  std::string why;
  std::shared_ptr<const Graph> graph =
      build_graph(handle, shape, choice.acc, cache != nullptr, why);
  std::shared_ptr<const Plan> plan =
      graph ? build_plan(handle, *graph, choice, why, cache) : nullptr;
  if (!plan)
    fail(ErrorKind::kIncompatible, shape.describe(), ": cuDNN engine config '", identity,
         "' cannot be rebuilt on this GPU and cuDNN", cache ? " as a dynamic-shape graph" : "",
         " (", why, "): rebuild the plan");
  return QuantizedConv(std::move(graph), std::move(plan));
}

std::string QuantizedConv::serialize() const {
  return serialize_execution_plan(plan_->plan);
}

QuantizedConv QuantizedConv::from_serialized(cudnnHandle_t handle, const QuantizedConvShape& shape,
                                             const std::string& identity, const std::string& text) {
  check_quantized_conv_shape(shape);
  (void)parse_identity(identity);  // kInvalidArgument when malformed, as from_identity
  // The operation graph is in the text; bind() needs only the shape.
  auto graph = std::make_shared<Graph>();
  graph->shape = shape;
  auto plan = std::make_shared<Plan>();
  plan->identity = identity;
  plan->kernel_cache = "restored";
  std::string why;
  if (!restore_execution_plan(handle, text, *plan, why))
    fail(ErrorKind::kIncompatible, shape.describe(), ": the compiled cuDNN plan of '", identity,
         "' cannot be restored on this GPU and cuDNN (", why, ")");
  return QuantizedConv(std::move(graph), std::move(plan));
}

QuantizedConv::Binding QuantizedConv::bind(const void* x, const void* w, const float* scale,
                                           const float* bias, const void* residual, void* y,
                                           void* workspace) const {
  const QuantizedConvShape& s = graph_->shape;
  BoundTensor tensors[6] = {{kX, x, "x"}, {kW, w, "w"}, {kScale, scale, "scale"}, {kY, y, "y"}};
  std::size_t count = 4;
  if (s.has_bias) tensors[count++] = {kBias, bias, "bias"};
  if (s.has_residual) tensors[count++] = {kResidual, residual, "residual"};
  Binding binding;
  binding.pack_ = make_variant_pack(std::span(tensors, count), workspace, workspace_bytes_,
                                    s.describe(), identity_);
  return binding;
}

void QuantizedConv::execute(cudnnHandle_t handle, cudaStream_t stream,
                            const Binding& binding) const {
  ANVIL_CHECK(binding);
  execute_plan(handle, stream, plan_->plan, binding.pack_);
}

}  // namespace anvil::cuda
