#include "cuda/cudnn_engine.h"

#include <algorithm>
#include <charconv>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_kernel_cache.h"

namespace anvil::cuda {

std::string EngineChoice::to_string() const {
  std::string s = cat("eng", index, ":");
  for (auto it = knobs.begin(); it != knobs.end(); ++it)
    s += cat(it == knobs.begin() ? "" : ",", it->first, "=", it->second);
  return s;
}

EngineChoice parse_engine_choice(std::string_view text, const std::string& identity,
                                 std::string_view expected) {
  auto malformed = [&] {
    fail(ErrorKind::kInvalidArgument, "malformed cuDNN engine identity '", identity, "' (expected ",
         expected, ")");
  };
  auto number = [&](std::string_view digits) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) malformed();
    return v;
  };
  const std::size_t colon = text.find(':');
  if (!text.starts_with("eng") || colon == std::string_view::npos) malformed();
  EngineChoice choice;
  choice.index = number(text.substr(3, colon - 3));
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = std::min(rest.find(','), rest.size());
    const std::string_view item = rest.substr(0, comma);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) malformed();
    choice.knobs[number(item.substr(0, eq))] = number(item.substr(eq + 1));
    rest = rest.substr(std::min(comma + 1, rest.size()));
  }
  return choice;
}

BackendDescriptor make_variant_pack(std::span<const BoundTensor> tensors, void* workspace,
                                    std::size_t workspace_bytes, const std::string& layer,
                                    const std::string& identity) {
  std::vector<std::int64_t> uids;
  std::vector<void*> ptrs;
  for (const BoundTensor& t : tensors) {
    if (t.address == nullptr)
      fail(ErrorKind::kInvalidArgument, layer, ": null pointer for its ", t.name, " (uid ", t.uid,
           ") bound to cuDNN plan ", identity);
    uids.push_back(t.uid);
    ptrs.push_back(const_cast<void*>(t.address));
  }
  if (workspace_bytes > 0 && workspace == nullptr)
    fail(ErrorKind::kInvalidArgument, layer, ": cuDNN plan ", identity, " needs ", workspace_bytes,
         " bytes of workspace, got null");
  BackendDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
           static_cast<std::int64_t>(uids.size()), uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
           static_cast<std::int64_t>(ptrs.size()), ptrs.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  return pack;
}

void execute_plan(cudnnHandle_t handle, cudaStream_t stream, const BackendDescriptor& plan,
                  const BackendDescriptor& pack) {
  ANVIL_GPU_CHECK(cudnnSetStream(handle, stream));
  ANVIL_GPU_CHECK(cudnnBackendExecute(handle, plan.get(), pack.get()));
}

std::string last_cudnn_error() {
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return detail;
}

std::string cudnn_status_text(cudnnStatus_t status) {
  const std::string detail = last_cudnn_error();
  return cat(cudnnGetErrorString(status), detail.empty() ? "" : cat(" (", detail, ")"));
}

BackendDescriptor make_nhwc_tensor(std::int64_t uid, cudnnDataType_t dtype,
                                   const std::vector<std::int64_t>& d, bool is_virtual) {
  BackendDescriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dtype);
  t.set_int64s(CUDNN_ATTR_TENSOR_DIMENSIONS, d);
  t.set_int64s(CUDNN_ATTR_TENSOR_STRIDES, {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]});
  t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
  t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  t.finalize();
  return t;
}

std::vector<EngineChoice> heuristic_choices(const BackendDescriptor& op_graph,
                                            cudnnBackendHeurMode_t mode, std::string* status) {
  BackendDescriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, op_graph);
  heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (const cudnnStatus_t st = heur.try_finalize(); st != CUDNN_STATUS_SUCCESS) {
    if (status) *status = cudnn_status_text(st);
    return {};
  }
  std::int64_t count = 0;
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  std::vector<BackendDescriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (std::int64_t i = 0; i < count; ++i)
    raw.push_back(configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
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
    for (int k = 0; k < CUDNN_KNOB_TYPE_COUNTS; ++k)
      knobs_raw.push_back(knobs.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR).get());
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
  if (status) *status = cat(count, " configs");
  return choices;
}

bool EngineNotes::has(cudnnBackendNumericalNote_t note) const {
  return std::find(numerical.begin(), numerical.end(), note) != numerical.end();
}

bool EngineNotes::has(cudnnBackendBehaviorNote_t note) const {
  return std::find(behavior.begin(), behavior.end(), note) != behavior.end();
}

std::string EngineNotes::text() const {
  std::string text;
  auto add = [&](const std::string& note) { text += cat(text.empty() ? "" : ",", note); };
  for (const cudnnBackendNumericalNote_t note : numerical)
    switch (note) {
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
        add("tensor_core");
        break;
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
        add("down_convert");
        break;
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        add("reduced_precision");
        break;
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
        add("nondeterministic");
        break;
      default:
        add(cat("numerical", static_cast<int>(note)));
        break;
    }
  for (const cudnnBackendBehaviorNote_t note : behavior)
    switch (note) {
      case CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION:
        add("runtime_compiled");
        break;
      case CUDNN_BEHAVIOR_NOTE_REQUIRES_FILTER_INT8x32_REORDER:
      case CUDNN_BEHAVIOR_NOTE_REQUIRES_BIAS_INT8x32_REORDER:
        add("int8x32_reorder");
        break;
      default:
        add(cat("behavior", static_cast<int>(note)));
        break;
    }
  return text;
}

EngineNotes read_engine_notes(const BackendDescriptor& engine) {
  EngineNotes notes;
  notes.numerical.resize(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  notes.behavior.resize(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  std::int64_t n_numerical = 0, n_behavior = 0;
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(
      engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
      CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_numerical, notes.numerical.data()));
  // Behaviour notes only inform (INT8x32 reordering, runtime compilation):
  // an engine that cannot report them has none that matter here.
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE,
                               CUDNN_TYPE_BEHAVIOR_NOTE, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT,
                               &n_behavior, notes.behavior.data()) != CUDNN_STATUS_SUCCESS)
    n_behavior = 0;
  notes.numerical.resize(static_cast<std::size_t>(n_numerical));
  notes.behavior.resize(static_cast<std::size_t>(n_behavior));
  return notes;
}

bool build_engine_plan(cudnnHandle_t handle, const BackendDescriptor& op_graph,
                       const EngineChoice& choice, std::string identity, const EngineFilter& accept,
                       EnginePlan& out, std::string& why, const CudnnKernelCache* cache) {
  out.identity = std::move(identity);
  auto failed = [&](const char* stage, cudnnStatus_t status) {
    why = cat(stage, ": ", cudnn_status_text(status));
    return false;
  };
  out.engine = BackendDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  out.engine.set_descriptor(CUDNN_ATTR_ENGINE_OPERATION_GRAPH, op_graph);
  out.engine.set_int64(CUDNN_ATTR_ENGINE_GLOBAL_INDEX, choice.index);
  if (const auto st = out.engine.try_finalize(); st != CUDNN_STATUS_SUCCESS)
    return failed("engine", st);
  if (accept) {
    const EngineNotes notes = read_engine_notes(out.engine);
    out.notes = notes.text();
    if (!accept(notes, why)) return false;
  }
  std::vector<cudnnBackendDescriptor_t> knobs_raw;
  for (const auto& [type, value] : choice.knobs) {
    BackendDescriptor& knob = out.knobs.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    const auto knob_type = static_cast<cudnnBackendKnobType_t>(type);
    knob.set(CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &knob_type);
    knob.set_int64(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, value);
    if (const auto st = knob.try_finalize(); st != CUDNN_STATUS_SUCCESS)
      return failed("knob choice", st);
    knobs_raw.push_back(knob.get());
  }
  out.config = BackendDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  out.config.set_descriptor(CUDNN_ATTR_ENGINECFG_ENGINE, out.engine);
  if (!knobs_raw.empty())
    out.config.set(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                   static_cast<std::int64_t>(knobs_raw.size()), knobs_raw.data());
  if (const auto st = out.config.try_finalize(); st != CUDNN_STATUS_SUCCESS)
    return failed("engine config", st);
  out.plan = BackendDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  out.plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  out.plan.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, out.config);
  if (const auto st = cache ? cache->finalize_plan(op_graph, out.config, out.plan, out.kernel_cache)
                            : out.plan.try_finalize();
      st != CUDNN_STATUS_SUCCESS)
    return failed("execution plan", st);
  out.workspace =
      static_cast<std::size_t>(out.plan.get_int64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE));
  return true;
}

std::string serialize_execution_plan(const BackendDescriptor& plan) {
  std::int64_t size = 0;
  if (cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                               CUDNN_TYPE_CHAR, 0, &size, nullptr) != CUDNN_STATUS_SUCCESS ||
      size <= 0)
    return {};
  std::string text(static_cast<std::size_t>(size), '\0');
  if (cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                               CUDNN_TYPE_CHAR, size, &size, text.data()) != CUDNN_STATUS_SUCCESS)
    return {};
  // Exactly the bytes cuDNN gave (its count may include a terminator):
  // restore_execution_plan hands them back as they were.
  text.resize(std::min(text.size(), static_cast<std::size_t>(size)));
  return text;
}

bool restore_execution_plan(cudnnHandle_t handle, const std::string& text, EnginePlan& out,
                            std::string& why) {
  if (text.empty()) {
    why = "no serialized plan";
    return false;
  }
  out.plan = BackendDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  out.plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  if (const cudnnStatus_t st = cudnnBackendSetAttribute(
          out.plan.get(), CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
          static_cast<std::int64_t>(text.size()), text.c_str());
      st != CUDNN_STATUS_SUCCESS) {
    why = cat("serialized plan: ", cudnn_status_text(st));
    return false;
  }
  if (const cudnnStatus_t st = out.plan.try_finalize(); st != CUDNN_STATUS_SUCCESS) {
    why = cat("serialized plan: ", cudnn_status_text(st));
    return false;
  }
  std::int64_t workspace = 0, count = 0;
  if (const cudnnStatus_t st =
          cudnnBackendGetAttribute(out.plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                   CUDNN_TYPE_INT64, 1, &count, &workspace);
      st != CUDNN_STATUS_SUCCESS || count != 1 || workspace < 0) {
    why = cat("restored plan's workspace size: ", cudnn_status_text(st));
    return false;
  }
  out.workspace = static_cast<std::size_t>(workspace);
  return true;
}

}  // namespace anvil::cuda
