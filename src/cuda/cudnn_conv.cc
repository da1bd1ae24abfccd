#include "cuda/cudnn_conv.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_descriptors.h"
#include "cuda/handles.h"

namespace anvil::cuda {

namespace {

// Unique ids of the graph's real tensors (the variant pack's keys); virtual
// tensors count up from kFirstVirtual.
enum : std::int64_t { kX = 1, kW = 2, kBias = 3, kResidual = 4, kY = 5, kFirstVirtual = 100 };

// An engine config as identity() spells it: global index + knob choices.
struct EngineChoice {
  std::int64_t index = 0;
  std::map<std::int64_t, std::int64_t> knobs;  // knob type -> value

  std::string to_string() const {
    std::string s = cat("eng", index, ":");
    for (auto it = knobs.begin(); it != knobs.end(); ++it)
      s += cat(it == knobs.begin() ? "" : ",", it->first, "=", it->second);
    return s;
  }
};

std::int64_t parse_int(std::string_view text, const std::string& identity) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    fail(ErrorKind::kInvalidArgument, "malformed cuDNN engine identity '", identity,
         "' (expected eng<index>:<knob>=<value>,...)");
  return v;
}

EngineChoice parse_identity(const std::string& identity) {
  const std::size_t colon = identity.find(':');
  if (identity.rfind("eng", 0) != 0 || colon == std::string::npos) parse_int("x", identity);
  EngineChoice choice;
  choice.index = parse_int(std::string_view(identity).substr(3, colon - 3), identity);
  std::string_view rest = std::string_view(identity).substr(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = std::min(rest.find(','), rest.size());
    const std::string_view item = rest.substr(0, comma);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) parse_int("x", identity);
    choice.knobs[parse_int(item.substr(0, eq), identity)] =
        parse_int(item.substr(eq + 1), identity);
    rest = rest.substr(std::min(comma + 1, rest.size()));
  }
  return choice;
}

std::string last_cudnn_error() {
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return detail;
}

std::string describe(const ConvShape& s) {
  return cat(s.fp16 ? "fp16" : "fp32", " conv x[", s.n, ",", s.c, ",", s.h, ",", s.w, "] w[", s.k,
             ",", s.c / std::max<std::int64_t>(s.groups, 1), ",", s.r, ",", s.s, "] groups ",
             s.groups, " stride ", s.stride_h, "x", s.stride_w, " pad ", s.pad_h, "x", s.pad_w,
             " dilation ", s.dil_h, "x", s.dil_w);
}

// Strides of a dense [n, c, h, w] tensor stored as n, h, w, c.
std::vector<std::int64_t> nhwc_strides(const std::vector<std::int64_t>& d) {
  return {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
}

BackendDescriptor make_tensor(std::int64_t uid, cudnnDataType_t dtype,
                              const std::vector<std::int64_t>& dims, bool is_virtual) {
  BackendDescriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dtype);
  t.set_int64s(CUDNN_ATTR_TENSOR_DIMENSIONS, dims);
  t.set_int64s(CUDNN_ATTR_TENSOR_STRIDES, nhwc_strides(dims));
  t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
  t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  t.finalize();
  return t;
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

struct FusedConv::Plan {
  std::string identity;
  BackendDescriptor engine;
  std::vector<BackendDescriptor> knobs;
  BackendDescriptor config;
  BackendDescriptor plan;
  std::size_t workspace = 0;
};

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
    return keep(last ? make_tensor(kY, dtype, out_dims, false)
                     : make_tensor(kFirstVirtual + step, CUDNN_DATA_FLOAT, out_dims, true));
  };

  const BackendDescriptor& x = keep(make_tensor(kX, dtype, {s.n, s.c, s.h, s.w}, false));
  const BackendDescriptor& w = keep(make_tensor(kW, dtype, {s.k, s.c / s.groups, s.r, s.s}, false));
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
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_tensor(kResidual, dtype, out_dims, false)));
  if (s.has_bias)
    pointwise(CUDNN_POINTWISE_ADD, &keep(make_tensor(kBias, dtype, {1, s.k, 1, 1}, false)));
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

// The engine configs one heuristics mode proposes, as engine choices; none
// when the mode does not apply to this graph.
std::vector<EngineChoice> heuristic_choices(const Graph& g, cudnnBackendHeurMode_t mode) {
  BackendDescriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g.op_graph);
  heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) return {};
  std::int64_t count = 0;
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  std::vector<BackendDescriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (std::int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    raw.push_back(configs.back().get());
  }
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                           raw.data()));
  std::vector<EngineChoice> choices;
  for (std::int64_t i = 0; i < count; ++i) {
    BackendDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t engine_raw = engine.get();
    std::int64_t n = 0;
    ANVIL_GPU_CHECK(cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_ENGINE,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine_raw));
    EngineChoice choice;
    choice.index = engine.get_int64(CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
    std::vector<BackendDescriptor> knobs;
    std::vector<cudnnBackendDescriptor_t> knobs_raw;
    for (int k = 0; k < CUDNN_KNOB_TYPE_COUNTS; ++k) {
      knobs.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
      knobs_raw.push_back(knobs.back().get());
    }
    ANVIL_GPU_CHECK(cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS,
                                             &n, knobs_raw.data()));
    for (std::int64_t k = 0; k < n; ++k) {
      cudnnBackendKnobType_t type{};
      std::int64_t got = 0;
      ANVIL_GPU_CHECK(cudnnBackendGetAttribute(knobs_raw[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE,
                                               CUDNN_TYPE_KNOB_TYPE, 1, &got, &type));
      choice.knobs[type] = knobs[k].get_int64(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE);
    }
    choices.push_back(std::move(choice));
  }
  return choices;
}

// True when the engine keeps the numerics this layer promises: FP32
// accumulation always, and for FP32 storage without allow_tf32 no tensor-core
// (TF32) math and no down-converted inputs.
bool numerics_allowed(const BackendDescriptor& engine, const ConvShape& s) {
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT] = {};
  std::int64_t n = 0;
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                           CUDNN_TYPE_NUMERICAL_NOTE,
                                           CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, notes));
  for (std::int64_t i = 0; i < n; ++i) {
    if (notes[i] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) return false;
    const bool tf32 = notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE ||
                      notes[i] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS;
    if (tf32 && !s.fp16 && !s.allow_tf32) return false;
  }
  return true;
}

// The plan of one engine choice, or null with `why` set when cuDNN cannot
// build it here (or, with check_numerics, when it breaks the numerics).
std::shared_ptr<const Plan> build_plan(cudnnHandle_t handle, const Graph& g,
                                       const EngineChoice& choice, bool check_numerics,
                                       std::string& why) {
  auto p = std::make_shared<Plan>();
  p->identity = choice.to_string();
  p->engine = BackendDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  p->engine.set_descriptor(CUDNN_ATTR_ENGINE_OPERATION_GRAPH, g.op_graph);
  p->engine.set_int64(CUDNN_ATTR_ENGINE_GLOBAL_INDEX, choice.index);
  auto failed = [&](const char* stage) {
    why = cat(stage, ": ", last_cudnn_error());
    return nullptr;
  };
  if (p->engine.try_finalize() != CUDNN_STATUS_SUCCESS) return failed("engine");
  if (check_numerics && !numerics_allowed(p->engine, g.shape)) {
    why = "numerical notes (TF32 or reduced-precision reduction)";
    return nullptr;
  }
  std::vector<cudnnBackendDescriptor_t> knobs_raw;
  for (const auto& [type, value] : choice.knobs) {
    BackendDescriptor& knob = p->knobs.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    const auto knob_type = static_cast<cudnnBackendKnobType_t>(type);
    knob.set(CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &knob_type);
    knob.set_int64(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, value);
    if (knob.try_finalize() != CUDNN_STATUS_SUCCESS) return failed("knob choice");
    knobs_raw.push_back(knob.get());
  }
  p->config = BackendDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  p->config.set_descriptor(CUDNN_ATTR_ENGINECFG_ENGINE, p->engine);
  if (!knobs_raw.empty())
    p->config.set(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                  static_cast<std::int64_t>(knobs_raw.size()), knobs_raw.data());
  if (p->config.try_finalize() != CUDNN_STATUS_SUCCESS) return failed("engine config");
  p->plan = BackendDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  p->plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  p->plan.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, p->config);
  if (p->plan.try_finalize() != CUDNN_STATUS_SUCCESS) return failed("execution plan");
  p->workspace =
      static_cast<std::size_t>(p->plan.get_int64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE));
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
    for (const EngineChoice& choice : heuristic_choices(*graph, mode)) {
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
  std::int64_t uids[5] = {kX, kW, kY};
  void* ptrs[5] = {const_cast<void*>(x), const_cast<void*>(w), y};
  int count = 3;
  if (s.has_bias) {
    uids[count] = kBias;
    ptrs[count++] = const_cast<void*>(bias);
  }
  if (s.has_residual) {
    uids[count] = kResidual;
    ptrs[count++] = const_cast<void*>(residual);
  }
  for (int i = 0; i < count; ++i)
    if (ptrs[i] == nullptr)
      fail(ErrorKind::kInvalidArgument, describe(s), ": null pointer for tensor uid ", uids[i]);
  if (workspace_bytes_ > 0 && workspace == nullptr)
    fail(ErrorKind::kInvalidArgument, describe(s), ": plan ", identity_, " needs ",
         workspace_bytes_, " bytes of workspace, got null");
  Binding binding;
  binding.pack_ = BackendDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  binding.pack_.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, count, uids);
  binding.pack_.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, count, ptrs);
  binding.pack_.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  binding.pack_.finalize();
  return binding;
}

void FusedConv::execute(cudnnHandle_t handle, cudaStream_t stream, const Binding& binding) const {
  ANVIL_CHECK(binding);
  ANVIL_GPU_CHECK(cudnnSetStream(handle, stream));
  ANVIL_GPU_CHECK(cudnnBackendExecute(handle, plan_->plan.get(), binding.pack_.get()));
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
