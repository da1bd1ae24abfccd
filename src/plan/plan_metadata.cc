#include "plan/plan_metadata.h"

#include <array>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "anvil/error.h"

namespace anvil::plan {
namespace {

using nlohmann::json;
// Written in a fixed, logical order (target first, layers last); read unordered.
using nlohmann::ordered_json;

// ---- Writing -----------------------------------------------------------------

std::string dtype_name(DType dtype) {
  return std::string(to_string(dtype));
}

ordered_json object_text_to_json(const std::string& text, const std::string& what);

ordered_json tensor_to_json(const TensorDesc& t) {
  ordered_json j = {{"id", t.id},
                    {"name", t.name},
                    {"dtype", dtype_name(t.dtype)},
                    {"layout", t.layout},
                    {"dims", t.dims}};
  if (t.channel_padding_to) j["channel_padding_to"] = *t.channel_padding_to;
  return j;
}

ordered_json profile_to_json(const Profile& p) {
  ordered_json inputs = ordered_json::object();
  for (const auto& [name, dim] : p.inputs)
    inputs[name] = {{"min", dim.min}, {"opt", dim.opt}, {"max", dim.max}};
  return {{"inputs", inputs}};
}

ordered_json layer_to_json(const LayerDesc& l) {
  ordered_json weights = ordered_json::array();
  for (const WeightRef& w : l.weights)
    weights.push_back({{"offset", w.offset},
                       {"bytes", w.bytes},
                       {"dtype", dtype_name(w.dtype)},
                       {"dims", w.dims}});
  return {{"name", l.name},
          {"kind", l.kind},
          {"inputs", l.inputs},
          {"outputs", l.outputs},
          {"params", object_text_to_json(l.params, "layer '" + l.name + "' params")},
          {"weights", weights},
          {"tactic", object_text_to_json(l.tactic, "layer '" + l.name + "' tactic")},
          {"stream", l.stream}};
}

// ---- Reading -------------------------------------------------------------------

// Deepest nesting of arrays and objects in `text`, strings skipped; counted
// before parsing so that hostile input cannot exhaust the stack later.
int nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

template <typename Json>
Json parse_json(std::string_view text, const std::string& what) {
  if (nesting_depth(text) > kMaxJsonDepth)
    fail(ErrorKind::kInvalidArgument, what, " nests deeper than ", kMaxJsonDepth, " levels");
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::kInvalidArgument, what, " is not valid JSON: ", e.what());
  }
}

ordered_json object_text_to_json(const std::string& text, const std::string& what) {
  ordered_json j = parse_json<ordered_json>(text, what);
  if (!j.is_object()) fail(ErrorKind::kInvalidArgument, what, " must be a JSON object: ", text);
  return j;
}

// Reads typed fields of the metadata, naming the field (as a path such as
// "layers[1].weights[0].offset") in every error.
class Reader {
 public:
  explicit Reader(std::string_view label) : label_(label) {}

  [[noreturn]] void bad(const std::string& path, const std::string& problem) const {
    fail(ErrorKind::kInvalidArgument, label_, ": invalid plan metadata: field '", path, "' ",
         problem);
  }

  const json& member(const json& object, const std::string& path, const char* key) const {
    const auto it = object.find(key);
    if (it == object.end()) bad(join(path, key), "is missing");
    return *it;
  }

  const json& object(const json& j, const std::string& path) const {
    if (!j.is_object()) bad(path, cat("must be an object, found ", j.type_name()));
    return j;
  }
  const json& array(const json& j, const std::string& path) const {
    if (!j.is_array()) bad(path, cat("must be an array, found ", j.type_name()));
    return j;
  }

  std::int64_t int64(const json& j, const std::string& path) const {
    if (!j.is_number_integer()) bad(path, cat("must be an integer, found ", j.type_name()));
    if (j.is_number_unsigned() &&
        j.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      bad(path, "is out of range");
    return j.get<std::int64_t>();
  }
  int int32(const json& j, const std::string& path) const {
    const std::int64_t v = int64(j, path);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      bad(path, cat("is out of range: ", v));
    return static_cast<int>(v);
  }
  bool boolean(const json& j, const std::string& path) const {
    if (!j.is_boolean()) bad(path, cat("must be true or false, found ", j.type_name()));
    return j.get<bool>();
  }
  std::string string(const json& j, const std::string& path) const {
    if (!j.is_string()) bad(path, cat("must be a string, found ", j.type_name()));
    return j.get<std::string>();
  }
  DType dtype(const json& j, const std::string& path) const {
    static constexpr std::array kDTypes = {DType::kFloat32, DType::kFloat16, DType::kFloat64,
                                           DType::kInt8,    DType::kUInt8,   DType::kInt32,
                                           DType::kInt64,   DType::kBool,    DType::kFloat8E4M3};
    const std::string name = string(j, path);
    for (const DType d : kDTypes)
      if (to_string(d) == name) return d;
    bad(path, cat("names no known dtype: \"", name, "\""));
  }
  std::vector<std::int64_t> int64s(const json& j, const std::string& path) const {
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < array(j, path).size(); ++i)
      out.push_back(int64(j[i], at(path, i)));
    return out;
  }
  std::vector<int> ints(const json& j, const std::string& path) const {
    std::vector<int> out;
    for (std::size_t i = 0; i < array(j, path).size(); ++i)
      out.push_back(int32(j[i], at(path, i)));
    return out;
  }
  std::string object_text(const json& j, const std::string& path) const {
    return object(j, path).dump();
  }

  static std::string join(const std::string& path, const char* key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string at(const std::string& path, std::size_t i) { return cat(path, "[", i, "]"); }

 private:
  std::string_view label_;
};

TargetInfo read_target(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  TargetInfo t;
  t.cc_major = r.int32(r.member(j, p, "cc_major"), Reader::join(p, "cc_major"));
  t.cc_minor = r.int32(r.member(j, p, "cc_minor"), Reader::join(p, "cc_minor"));
  t.gpu_name = r.string(r.member(j, p, "gpu_name"), Reader::join(p, "gpu_name"));
  t.cuda_runtime_version =
      r.int32(r.member(j, p, "cuda_runtime_version"), Reader::join(p, "cuda_runtime_version"));
  t.cudnn_version = r.int32(r.member(j, p, "cudnn_version"), Reader::join(p, "cudnn_version"));
  t.cublaslt_version =
      r.int32(r.member(j, p, "cublaslt_version"), Reader::join(p, "cublaslt_version"));
  return t;
}

BuildOptions read_options(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  BuildOptions o;
  o.fp16 = r.boolean(r.member(j, p, "fp16"), Reader::join(p, "fp16"));
  o.tf32 = r.boolean(r.member(j, p, "tf32"), Reader::join(p, "tf32"));
  o.workspace_bytes =
      r.int64(r.member(j, p, "workspace_bytes"), Reader::join(p, "workspace_bytes"));
  const std::string dp = Reader::join(p, "disabled_passes");
  const json& passes = r.array(r.member(j, p, "disabled_passes"), dp);
  for (std::size_t i = 0; i < passes.size(); ++i)
    o.disabled_passes.push_back(r.string(passes[i], Reader::at(dp, i)));
  return o;
}

TensorDesc read_tensor(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  TensorDesc t;
  t.id = r.int32(r.member(j, p, "id"), Reader::join(p, "id"));
  t.name = r.string(r.member(j, p, "name"), Reader::join(p, "name"));
  t.dtype = r.dtype(r.member(j, p, "dtype"), Reader::join(p, "dtype"));
  t.layout = r.string(r.member(j, p, "layout"), Reader::join(p, "layout"));
  t.dims = r.int64s(r.member(j, p, "dims"), Reader::join(p, "dims"));
  if (j.contains("channel_padding_to"))
    t.channel_padding_to = r.int64(j["channel_padding_to"], Reader::join(p, "channel_padding_to"));
  return t;
}

IoBinding read_io(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  return {r.string(r.member(j, p, "name"), Reader::join(p, "name")),
          r.int32(r.member(j, p, "tensor_id"), Reader::join(p, "tensor_id")),
          r.boolean(r.member(j, p, "is_input"), Reader::join(p, "is_input"))};
}

Profile read_profile(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  const std::string ip = Reader::join(p, "inputs");
  Profile profile;
  for (const auto& [name, dim] : r.object(r.member(j, p, "inputs"), ip).items()) {
    const std::string dp = ip + "." + name;
    r.object(dim, dp);
    profile.inputs[name] = {r.int64s(r.member(dim, dp, "min"), Reader::join(dp, "min")),
                            r.int64s(r.member(dim, dp, "opt"), Reader::join(dp, "opt")),
                            r.int64s(r.member(dim, dp, "max"), Reader::join(dp, "max"))};
  }
  return profile;
}

WeightRef read_weight(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  return {r.int64(r.member(j, p, "offset"), Reader::join(p, "offset")),
          r.int64(r.member(j, p, "bytes"), Reader::join(p, "bytes")),
          r.dtype(r.member(j, p, "dtype"), Reader::join(p, "dtype")),
          r.int64s(r.member(j, p, "dims"), Reader::join(p, "dims"))};
}

LayerDesc read_layer(const Reader& r, const json& j, const std::string& p) {
  r.object(j, p);
  LayerDesc l;
  l.name = r.string(r.member(j, p, "name"), Reader::join(p, "name"));
  l.kind = r.string(r.member(j, p, "kind"), Reader::join(p, "kind"));
  l.inputs = r.ints(r.member(j, p, "inputs"), Reader::join(p, "inputs"));
  l.outputs = r.ints(r.member(j, p, "outputs"), Reader::join(p, "outputs"));
  l.params = r.object_text(r.member(j, p, "params"), Reader::join(p, "params"));
  const std::string wp = Reader::join(p, "weights");
  const json& weights = r.array(r.member(j, p, "weights"), wp);
  for (std::size_t i = 0; i < weights.size(); ++i)
    l.weights.push_back(read_weight(r, weights[i], Reader::at(wp, i)));
  l.tactic = r.object_text(r.member(j, p, "tactic"), Reader::join(p, "tactic"));
  // Plans from before auxiliary streams have no "stream": all on stream 0.
  if (j.contains("stream")) l.stream = r.int32(j["stream"], Reader::join(p, "stream"));
  return l;
}

// Reads the array `key` of `root`, one element at a time with `read`.
template <typename T, typename ReadOne>
std::vector<T> read_list(const Reader& r, const json& root, const char* key, ReadOne read) {
  const json& list = r.array(r.member(root, "", key), key);
  std::vector<T> out;
  out.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i)
    out.push_back(read(r, list[i], Reader::at(key, i)));
  return out;
}

}  // namespace

std::string to_metadata(const Plan& plan) {
  const TargetInfo& t = plan.target;
  const BuildOptions& o = plan.options;
  ordered_json root = {
      {"anvil_version", plan.anvil_version},
      {"target",
       {{"cc_major", t.cc_major},
        {"cc_minor", t.cc_minor},
        {"gpu_name", t.gpu_name},
        {"cuda_runtime_version", t.cuda_runtime_version},
        {"cudnn_version", t.cudnn_version},
        {"cublaslt_version", t.cublaslt_version}}},
      {"options",
       {{"fp16", o.fp16},
        {"tf32", o.tf32},
        {"workspace_bytes", o.workspace_bytes},
        {"disabled_passes", o.disabled_passes}}},
      {"tensors", ordered_json::array()},
      {"io", ordered_json::array()},
      {"profiles", ordered_json::array()},
      {"layers", ordered_json::array()},
  };
  for (const TensorDesc& tensor : plan.tensors)
    root["tensors"].push_back(tensor_to_json(tensor));
  for (const IoBinding& io : plan.io)
    root["io"].push_back(
        {{"name", io.name}, {"tensor_id", io.tensor_id}, {"is_input", io.is_input}});
  for (const Profile& p : plan.profiles)
    root["profiles"].push_back(profile_to_json(p));
  for (const LayerDesc& l : plan.layers)
    root["layers"].push_back(layer_to_json(l));
  try {
    return root.dump();
  } catch (const ordered_json::exception& e) {
    // dump() refuses strings that are not UTF-8.
    fail(ErrorKind::kInvalidArgument, "plan metadata cannot be written: ", e.what());
  }
}

Plan from_metadata(std::string_view text, std::string_view label) {
  // nlohmann stops at a NUL as at the end of input: a metadata_size grown
  // into the zero padding would otherwise go unnoticed.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    fail(ErrorKind::kInvalidArgument, label, ": plan metadata is not valid JSON: NUL byte at ",
         nul);
  const json root = parse_json<json>(text, cat(label, ": plan metadata"));
  const Reader r(label);
  r.object(root, "(root)");
  Plan plan;
  plan.anvil_version = r.string(r.member(root, "", "anvil_version"), "anvil_version");
  plan.target = read_target(r, r.member(root, "", "target"), "target");
  plan.options = read_options(r, r.member(root, "", "options"), "options");
  plan.tensors = read_list<TensorDesc>(r, root, "tensors", read_tensor);
  plan.io = read_list<IoBinding>(r, root, "io", read_io);
  plan.profiles = read_list<Profile>(r, root, "profiles", read_profile);
  plan.layers = read_list<LayerDesc>(r, root, "layers", read_layer);
  return plan;
}

}  // namespace anvil::plan
