#include "cuda/cudnn_conv.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_descriptors.h"
#include "cuda/cudnn_engine.h"
#include "cuda/handles.h"

namespace anvil::cuda {

namespace {

// Unique ids of the graph's real tensors (the variant pack's keys); virtual
// tensors count up from kFirstVirtual.
enum : std::int64_t { kX = 1, kW = 2, kBias = 3, kResidual = 4, kY = 5, kFirstVirtual = 100 };

EngineChoice parse_identity(const std::string& identity) {
  return parse_engine_choice(identity, identity, "eng<index>:<knob>=<value>,...");
}

std::string describe(const ConvShape& s) {
  return cat(s.fp16 ? "fp16" : "fp32", " conv x[", s.n, ",", s.c, ",", s.h, ",", s.w, "] w[", s.k,
             ",", s.c / std::max<std::int64_t>(s.groups, 1), ",", s.r, ",", s.s, "] groups ",
             s.groups, " stride ", s.stride_h, "x", s.stride_w, " pad ", s.pad_h, "x", s.pad_w,
             " dilation ", s.dil_h, "x", s.dil_w);
}

BackendDescriptor make_conv_desc(const ConvShape& s) {
  BackendDescriptor d(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
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

// The pointwise descriptor of an epilogue step (ADD, or the activation).
BackendDescriptor make_pointwise_desc(cudnnPointwiseMode_t mode, const ConvShape& s) {
  BackendDescriptor d(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  d.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  d.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  if (mode == CUDNN_POINTWISE_RELU_FWD) {
    // cuDNN's ReLU: below lower_clip, lower_clip + slope * (x - lower_clip);
    // above upper_clip, upper_clip. So Clip and LeakyRelu are ReLUs too.
    if (s.act == ConvActivation::kClip) {
      const double lower = s.clip_min, upper = s.clip_max;
      d.set(CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, 1, &lower);
      d.set(CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, 1, &upper);
    } else if (s.act == ConvActivation::kLeakyRelu) {
      const double slope = s.act_alpha;
      d.set(CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, 1, &slope);
    }
  }
  d.finalize();
  return d;
}

// The cuDNN pointwise mode of an activation; kUnsupported where there is none.
std::optional<cudnnPointwiseMode_t> activation_mode(ConvActivation act) {
  switch (act) {
    case ConvActivation::kNone:
      return std::nullopt;
    case ConvActivation::kRelu:
    case ConvActivation::kClip:
    case ConvActivation::kLeakyRelu:
      return CUDNN_POINTWISE_RELU_FWD;
    case ConvActivation::kSigmoid:
      return CUDNN_POINTWISE_SIGMOID_FWD;
    case ConvActivation::kHardSigmoid:
    case ConvActivation::kHardSwish:
      fail(ErrorKind::kUnsupported,
           "cuDNN has no HardSigmoid/HardSwish pointwise mode: run the activation separately "
           "after the fused convolution");
  }
  fail(ErrorKind::kInternal, "unknown ConvActivation");
}

}  // namespace

std::int64_t ConvShape::out_h() const {
  return (h + pad_h + (pad_h_end < 0 ? pad_h : pad_h_end) - dil_h * (r - 1) - 1) / stride_h + 1;
}

std::int64_t ConvShape::out_w() const {
  return (w + pad_w + (pad_w_end < 0 ? pad_w : pad_w_end) - dil_w * (s - 1) - 1) / stride_w + 1;
}

bool cudnn_fuses(ConvActivation act) {
  return act != ConvActivation::kHardSigmoid && act != ConvActivation::kHardSwish;
}

void check_fused_conv_shape(const ConvShape& s) {
  const std::int64_t sizes[] = {s.n, s.c,        s.h,        s.w,     s.k,     s.r,
                                s.s, s.stride_h, s.stride_w, s.dil_h, s.dil_w, s.groups};
  if (std::any_of(std::begin(sizes), std::end(sizes), [](std::int64_t v) { return v < 1; }) ||
      s.pad_h < 0 || s.pad_w < 0)
    fail(ErrorKind::kInvalidArgument, describe(s), ": sizes must be positive, pads >= 0");
  if (s.c % s.groups != 0 || s.k % s.groups != 0)
    fail(ErrorKind::kInvalidArgument, describe(s), ": C and K must be multiples of groups");
  if ((s.pad_h_end >= 0 && s.pad_h_end != s.pad_h) || (s.pad_w_end >= 0 && s.pad_w_end != s.pad_w))
    fail(ErrorKind::kUnsupported, describe(s),
         ": asymmetric padding is not supported by the fused cuDNN convolution (pad the input)");
  if (s.out_h() < 1 || s.out_w() < 1)
    fail(ErrorKind::kInvalidArgument, describe(s), ": empty output");
  activation_mode(s.act);
}

struct FusedConv::Graph {
  ConvShape shape;
  std::vector<BackendDescriptor> parts;  // tensors, descriptors and operations it refers to
  BackendDescriptor op_graph;
};

struct FusedConv::Plan : EnginePlan {};

namespace {

using Graph = FusedConv::Graph;
using Plan = FusedConv::Plan;

// conv -> [+ residual] -> [+ bias] -> [act]; the last step writes y, the
// others FP32 virtual tensors.
std::shared_ptr<const Graph> build_graph(cudnnHandle_t handle, const ConvShape& s) {
  check_fused_conv_shape(s);
  auto g = std::make_shared<Graph>();
  g->shape = s;
  const cudnnDataType_t dtype = s.fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  const std::vector<std::int64_t> out_dims{s.n, s.k, s.out_h(), s.out_w()};
  const std::optional<cudnnPointwiseMode_t> act = activation_mode(s.act);
  const int steps = 1 + s.has_bias + s.has_residual + act.has_value();
  int step = 0;
  std::vector<cudnnBackendDescriptor_t> ops;
  auto keep = [&](BackendDescriptor d) -> const BackendDescriptor& {
    g->parts.push_back(std::move(d));
    return g->parts.back();
  };
  g->parts.reserve(32);  // references returned by keep() must stay valid
  auto next_output = [&]() -> const BackendDescriptor& {
    const bool last = ++step == steps;
    return keep(last ? make_nhwc_tensor(kY, dtype, out_dims, false)
                     : make_nhwc_tensor(kFirstVirtual + step, CUDNN_DATA_FLOAT, out_dims, true));
  };

  const BackendDescriptor& x = keep(make_nhwc_tensor(kX, dtype, {s.n, s.c, s.h, s.w}, false));
  const BackendDescriptor& w =
      keep(make_nhwc_tensor(kW, dtype, {s.k, s.c / s.groups, s.r, s.s}, false));
  const BackendDescriptor& conv_desc = keep(make_conv_desc(s));
  const BackendDescriptor* prev = &next_output();
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

  auto pointwise = [&](cudnnPointwiseMode_t mode, const BackendDescriptor* operand) {
    const BackendDescriptor& desc = keep(make_pointwise_desc(mode, s));
    const BackendDescriptor& out = next_output();
    BackendDescriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, desc);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *prev);
    if (operand) op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *operand);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, out);
    op.finalize();
    ops.push_back(keep(std::move(op)).get());
    prev = &out;
  };
  // The residual is added before the bias: cuDNN's pre-compiled FP32
  // conv-bias-activation engines know act(conv + z + bias), and the two
  // orders differ only in FP32 rounding.
  if (s.has_residual)
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_nhwc_tensor(kResidual, dtype, out_dims, false)));
  if (s.has_bias)
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_nhwc_tensor(kBias, dtype, {1, s.k, 1, 1}, false)));
  if (act) pointwise(*act, nullptr);

  g->op_graph = BackendDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  g->op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                  static_cast<std::int64_t>(ops.size()), ops.data());
  g->op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  if (g->op_graph.try_finalize() != CUDNN_STATUS_SUCCESS)
    fail(ErrorKind::kUnsupported, describe(s), ": cuDNN cannot build this operation graph (",
         last_cudnn_error(), ")");
  return g;
}

// True when the engine keeps the numerics this layer promises: FP32
// accumulation always, and for FP32 storage without allow_tf32 no tensor-core
// (TF32) math and no down-converted inputs.
bool numerics_allowed(const EngineNotes& notes, const ConvShape& s) {
  if (notes.has(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)) return false;
  const bool tf32 = notes.has(CUDNN_NUMERICAL_NOTE_TENSOR_CORE) ||
                    notes.has(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS);
  return !(tf32 && !s.fp16 && !s.allow_tf32);
}

// The plan of one engine choice, or null with `why` set when cuDNN cannot
// build it here (or, with check_numerics, when it breaks the numerics).
std::shared_ptr<const Plan> build_plan(cudnnHandle_t handle, const Graph& g,
                                       const EngineChoice& choice, bool check_numerics,
                                       std::string& why) {
  auto p = std::make_shared<Plan>();
  const EngineFilter numerics = [&](const EngineNotes& notes, std::string& reason) {
    if (numerics_allowed(notes, g.shape)) return true;
    reason = "numerical notes (TF32 or reduced-precision reduction)";
    return false;
  };
  if (!build_engine_plan(handle, g.op_graph, choice, choice.to_string(),
                         check_numerics ? numerics : EngineFilter(), *p, why))
    return nullptr;
  return p;
}

}  // namespace

FusedConv::FusedConv(std::shared_ptr<const Graph> graph, std::shared_ptr<const Plan> plan)
    : graph_(std::move(graph)),
      plan_(std::move(plan)),
      identity_(plan_->identity),
      workspace_bytes_(plan_->workspace) {}

const ConvShape& FusedConv::shape() const {
  return graph_->shape;
}

std::vector<FusedConv> FusedConv::candidates(cudnnHandle_t handle, const ConvShape& shape,
                                             int max_candidates) {
  const std::shared_ptr<const Graph> graph = build_graph(handle, shape);
  std::vector<FusedConv> result;
  std::set<std::string> seen;
  for (cudnnBackendHeurMode_t mode :
       {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_FALLBACK}) {
    for (const EngineChoice& choice : heuristic_choices(graph->op_graph, mode)) {
      if (static_cast<int>(result.size()) >= max_candidates) return result;
      if (!seen.insert(choice.to_string()).second) continue;
      std::string why;
      if (auto plan = build_plan(handle, *graph, choice, true, why))
        result.push_back(FusedConv(graph, std::move(plan)));
    }
  }
  return result;
}

FusedConv FusedConv::from_identity(cudnnHandle_t handle, const ConvShape& shape,
                                   const std::string& identity) {
  const EngineChoice choice = parse_identity(identity);
  std::shared_ptr<const Graph> graph = build_graph(handle, shape);
  std::string why;
  auto plan = build_plan(handle, *graph, choice, false, why);
  if (!plan)
    fail(ErrorKind::kIncompatible, describe(shape), ": cuDNN engine config '", identity,
         "' cannot be rebuilt on this GPU and cuDNN (", why, "): rebuild the plan");
  return FusedConv(std::move(graph), std::move(plan));
}

FusedConv::Binding FusedConv::bind(const void* x, const void* w, const void* bias,
                                   const void* residual, void* y, void* workspace) const {
  const ConvShape& s = graph_->shape;
  BoundTensor tensors[5] = {{kX, x, "x"}, {kW, w, "w"}, {kY, y, "y"}};
  std::size_t count = 3;
  if (s.has_bias) tensors[count++] = {kBias, bias, "bias"};
  if (s.has_residual) tensors[count++] = {kResidual, residual, "residual"};
  Binding binding;
  binding.pack_ = make_variant_pack(std::span(tensors, count), workspace, workspace_bytes_,
                                    describe(s), identity_);
  return binding;
}

void FusedConv::execute(cudnnHandle_t handle, cudaStream_t stream, const Binding& binding) const {
  ANVIL_CHECK(binding);
  execute_plan(handle, stream, plan_->plan, binding.pack_);
}

void FusedConv::execute(cudnnHandle_t handle, cudaStream_t stream, const void* x, const void* w,
                        const void* bias, const void* residual, void* y, void* workspace) const {
  execute(handle, stream, bind(x, w, bias, residual, y, workspace));
}

float time_ms(cudnnHandle_t handle, cudaStream_t stream, const FusedConv& conv, const void* x,
              const void* w, const void* bias, const void* residual, void* y, void* workspace,
              int iterations) {
  conv.execute(handle, stream, x, w, bias, residual, y, workspace);
  const Event start, end;
  start.record(stream);
  for (int i = 0; i < iterations; ++i)
    conv.execute(handle, stream, x, w, bias, residual, y, workspace);
  end.record(stream);
  end.synchronize();
  return Event::elapsed_ms(start, end) / static_cast<float>(std::max(iterations, 1));
}

}  // namespace anvil::cuda
