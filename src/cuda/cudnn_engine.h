// What the cuDNN layers (FusedConv, QuantizedConv) share once their operation
// graph is built: an engine config spelled as an identity string, the configs
// cuDNN's heuristics propose, an engine's notes, and the execution plan of one
// config.
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/cudnn_descriptors.h"

namespace anvil::cuda {

class CudnnKernelCache;

// An engine config: the engine's global index and its knob choices.
struct EngineChoice {
  std::int64_t index = 0;
  std::map<std::int64_t, std::int64_t> knobs;  // knob type -> value

  // "eng<index>:<knob type>=<value>,..." (knobs sorted by type).
  std::string to_string() const;
};

// Parses `text` as EngineChoice::to_string() spells it; kInvalidArgument
// naming `identity` (the whole identity `text` is part of) and the form
// `expected` when it is malformed.
EngineChoice parse_engine_choice(std::string_view text, const std::string& identity,
                                 std::string_view expected);

// cuDNN's last error message (cudnnGetLastErrorString), or "".
std::string last_cudnn_error();
// cuDNN's name for `status`, with its last error message in parentheses.
std::string cudnn_status_text(cudnnStatus_t status);

// A dense [n, c, h, w] tensor stored as n, h, w, c, 16-byte aligned.
BackendDescriptor make_nhwc_tensor(std::int64_t uid, cudnnDataType_t dtype,
                                   const std::vector<std::int64_t>& dims, bool is_virtual);

// The engine configs one heuristics mode proposes for a finalized operation
// graph, in its order; none when the mode does not apply, and then `status`
// (when given) says why.
std::vector<EngineChoice> heuristic_choices(const BackendDescriptor& op_graph,
                                            cudnnBackendHeurMode_t mode,
                                            std::string* status = nullptr);

// An engine's numerical and behaviour notes.
struct EngineNotes {
  std::vector<cudnnBackendNumericalNote_t> numerical;
  std::vector<cudnnBackendBehaviorNote_t> behavior;

  bool has(cudnnBackendNumericalNote_t note) const;
  bool has(cudnnBackendBehaviorNote_t note) const;
  // e.g. "tensor_core,runtime_compiled".
  std::string text() const;
};
EngineNotes read_engine_notes(const BackendDescriptor& engine);

// An engine config made executable for one operation graph.
struct EnginePlan {
  std::string identity;
  std::string notes;  // EngineNotes::text() of the engine, when an EngineFilter read them
  BackendDescriptor engine;
  std::vector<BackendDescriptor> knobs;
  BackendDescriptor config;
  BackendDescriptor plan;
  std::size_t workspace = 0;
  // CudnnKernelCache::finalize_plan's report when built with a cache, else "".
  std::string kernel_cache;
};

// A tensor of an operation graph bound to an address: its uid, and the name
// errors give it.
struct BoundTensor {
  std::int64_t uid = 0;
  const void* address = nullptr;
  const char* name = "";
};

// A finalized variant pack of `tensors` and the workspace: what
// cudnnBackendExecute reads. A null tensor address, or a null workspace
// where the plan needs workspace_bytes > 0, is a kInvalidArgument naming
// `layer`, the tensor (or the workspace) and the plan's `identity`, thrown
// before cuDNN is called. Allocates on the host, so layers build it once
// per binding of their buffers, never per launch.
BackendDescriptor make_variant_pack(std::span<const BoundTensor> tensors, void* workspace,
                                    std::size_t workspace_bytes, const std::string& layer,
                                    const std::string& identity);

// Runs `plan` with `pack` on `stream` (sets the handle's stream).
void execute_plan(cudnnHandle_t handle, cudaStream_t stream, const BackendDescriptor& plan,
                  const BackendDescriptor& pack);

// Decides whether an engine may be used, from its notes; false with `why`.
using EngineFilter = std::function<bool(const EngineNotes& notes, std::string& why)>;

// Builds `choice` on `op_graph` into `out` (identity set to `identity`), or
// returns false with `why` set when cuDNN cannot build it here or `accept`
// refuses the engine. With an empty `accept` the notes are not read. With a
// `cache` (only for a dynamic-shape `op_graph`) the plan is finalized through
// it, binding a cached kernel or storing the one it compiles.
bool build_engine_plan(cudnnHandle_t handle, const BackendDescriptor& op_graph,
                       const EngineChoice& choice, std::string identity, const EngineFilter& accept,
                       EnginePlan& out, std::string& why, const CudnnKernelCache* cache = nullptr);

// A finalized execution plan as cuDNN serializes it
// (CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION: the operation graph, the
// engine config and, for a runtime-compiled engine, its compiled kernel),
// or "" where this cuDNN or this engine does not serialize plans.
std::string serialize_execution_plan(const BackendDescriptor& plan);

// Restores a serialize_execution_plan() text into `out.plan` on `handle`, setting
// out.workspace: no compilation. False, with `why`, when cuDNN refuses the
// text (another cuDNN version or GPU, or a damaged text). `out` keeps its
// identity and notes; its engine and config stay empty.
bool restore_execution_plan(cudnnHandle_t handle, const std::string& text, EnginePlan& out,
                            std::string& why);

}  // namespace anvil::cuda
