// The plan file (`model.plan`): what `anvil build` writes and the runtime
// loads. A 64-byte binary header (magic, format version, sizes, checksum), JSON
// metadata (target GPU and libraries, build options, tensors, IO, profiles,
// layers with their tactics) and one blob of weights. docs/FORMAT.md is the
// byte-level specification; this header is its C++ face.
//
// Reading is strict: a file that is not a plan, is truncated or corrupted, or
// is internally inconsistent raises one anvil::Error naming the file, never a
// crash. A plan built for another GPU or library version is refused by
// check_compatible() before anything reaches the GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/types.h"

namespace anvil::plan {

// The only format version this build reads and writes. Bump it for any change
// an older reader would misread (a new field it must not ignore, a new layout).
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderSize = 64;
// The weights blob starts at a multiple of this, so that it can be mapped or
// copied to the GPU without realignment.
inline constexpr std::size_t kWeightsAlignment = 256;

// The GPU and libraries a plan was built for (or the machine it runs on).
// Versions use each library's own integer encoding, as its API returns them:
//   cuda_runtime_version  cudaRuntimeGetVersion: 1000*major + 10*minor (13000 = 13.0)
//   cudnn_version         cudnnGetVersion: 10000*major + 100*minor + patch from
//                         cuDNN 9 (91400 = 9.14.0), 1000*major + 100*minor + patch
//                         before (8907 = 8.9.7)
//   cublaslt_version      cublasLtGetVersion: 10000*major + 100*minor + patch
struct TargetInfo {
  int cc_major = 0;
  int cc_minor = 0;
  std::string gpu_name;  // e.g. "NVIDIA H100 80GB HBM3", for messages only
  int cuda_runtime_version = 0;
  int cudnn_version = 0;
  int cublaslt_version = 0;

  bool operator==(const TargetInfo&) const = default;
};

struct BuildOptions {
  bool fp16 = false;
  bool tf32 = false;
  std::int64_t workspace_bytes = 0;
  std::vector<std::string> disabled_passes;

  bool operator==(const BuildOptions&) const = default;
};

// One tensor of the engine: a graph input or output or an activation.
struct TensorDesc {
  int id = 0;  // == its index in Plan::tensors
  std::string name;
  DType dtype = DType::kFloat32;
  std::string layout = "NCHW";     // "NCHW", "NHWC" (rank 4) or "NC" (rank 2)
  std::vector<std::int64_t> dims;  // logical dims in `layout` order; dims[0] may be -1 (batch)
  std::optional<std::int64_t> channel_padding_to;  // stored channel count when padded (3 -> 8)

  bool operator==(const TensorDesc&) const = default;
};

struct IoBinding {
  std::string name;  // the ONNX input or output name users bind by
  int tensor_id = 0;
  bool is_input = true;

  bool operator==(const IoBinding&) const = default;
};

// The range of shapes one input accepts under a profile, and the shape tactics
// were timed at. Same rank as the tensor; fixed dims equal the tensor's.
struct ProfileDim {
  std::vector<std::int64_t> min, opt, max;

  bool operator==(const ProfileDim&) const = default;
};

// One optimization profile: shape ranges keyed by input name. Every input with
// a dynamic dim appears in every profile.
struct Profile {
  std::map<std::string, ProfileDim> inputs;

  bool operator==(const Profile&) const = default;
};

// A slice of the weights blob: `bytes` at `offset` holding a dense tensor of
// `dims` (bytes == product(dims) * size_of(dtype)).
struct WeightRef {
  std::int64_t offset = 0;
  std::int64_t bytes = 0;
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> dims;

  bool operator==(const WeightRef&) const = default;
};

// One executable step. `params` (kind-specific attributes: strides, pads,
// epilogue) and `tactic` (the autotuner's winner: cuDNN engine id + knobs or a
// cuBLASLt algo config) are JSON documents kept as text, so this header and its
// users stay free of the JSON library; the file stores them as JSON values, and
// reading gives them back in compact form (nlohmann dump(): sorted keys).
struct LayerDesc {
  std::string name;                  // unique within the plan
  std::string kind;                  // e.g. "conv", "gemm", "pool", "softmax"
  std::vector<int> inputs, outputs;  // tensor ids
  std::string params = "{}";
  std::vector<WeightRef> weights;
  std::string tactic = "{}";
  // 0: the caller's stream; 1..kMaxAuxStreams: an auxiliary stream of the
  // context (plan/streams.h). Optional in the file, 0 when absent.
  int stream = 0;

  bool operator==(const LayerDesc&) const = default;
};

struct Plan {
  std::string anvil_version;
  TargetInfo target;
  BuildOptions options;
  std::vector<TensorDesc> tensors;
  std::vector<IoBinding> io;
  std::vector<Profile> profiles;
  std::vector<LayerDesc> layers;  // in execution order
  std::vector<std::byte> weights;

  bool operator==(const Plan&) const = default;
};

// The bytes of a plan file. Throws Error(kInvalidArgument) for a plan that
// would not read back (invalid params/tactic JSON, inconsistent tables).
std::vector<std::byte> serialize_plan(const Plan& plan);

// Parses and validates a plan file's bytes. Every failure is one Error whose
// message starts with `label` (the file path): kInvalidArgument for a file
// that is not a plan, truncated, corrupted or inconsistent; kIncompatible for
// another format version.
Plan deserialize_plan(std::span<const std::byte> bytes, std::string_view label);

// File forms of the two above; kIo when the file cannot be read or written.
Plan read_plan_file(const std::filesystem::path& path);
void write_plan_file(const std::filesystem::path& path, const Plan& plan);

// Refuses (kIncompatible, one error naming every mismatch) a plan built for
// another compute capability, another cuDNN or cuBLASLt major version, or a
// newer CUDA runtime major version than `current` has. `label` starts the
// message.
void check_compatible(const Plan& plan, const TargetInfo& current,
                      std::string_view label = "model.plan");

// FNV-1a 64 of `bytes`: the plan file's checksum (exposed for tests and the fuzzer).
std::uint64_t fnv1a64(std::span<const std::byte> bytes);

}  // namespace anvil::plan
