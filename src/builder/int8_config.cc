#include "builder/int8_config.h"

#include <algorithm>

#include "anvil/error.h"
#include "ops/op.h"
#include "quant/calibrate.h"
#include "quant/calibration_cache.h"
#include "quant/fp8_e4m3.h"
#include "quant/int8_scales.h"

namespace anvil::builder {

namespace {

bool is_conv(const ir::Node& node) {
  const bool onnx = node.domain.empty() || node.domain == "ai.onnx";
  return (onnx && node.op_type == "Conv") ||
         (node.domain == ops::kAnvilDomain && node.op_type == "FusedConv");
}

}  // namespace

std::map<std::string, float> int8_scales_for(const std::filesystem::path& model,
                                             const ir::Graph& graph,
                                             const std::filesystem::path& cache) {
  const quant::CalibrationTable table = quant::read_calibration_cache(cache);
  // The fingerprint starts with the model file's hash (quant/calibrate.h).
  const std::string expected = "model=" + quant::hash_file(model);
  if (table.fingerprint.rfind(expected, 0) != 0)
    fail(ErrorKind::kInvalidArgument, cache.string(), ": calibrated for another model (",
         table.fingerprint, "); ", model.string(), " has ", expected,
         ". Calibrate this model: anvil calibrate ", model.string(), " --data DIR -o ",
         cache.string());
  std::map<std::string, float> scales = quant::int8_activation_scales(graph, table);
  const bool any_conv_input =
      std::any_of(graph.nodes().begin(), graph.nodes().end(), [&](const auto& node) {
        return is_conv(*node) && node->input(0) && scales.contains(node->input(0)->name);
      });
  if (!any_conv_input)
    fail(ErrorKind::kInvalidArgument, cache.string(), ": names none of the values ", model.string(),
         "'s convolutions read, so no layer could run in INT8; recalibrate ",
         "it with this version of anvil calibrate");
  return scales;
}

void require_fp8_gpu(const std::string& gpu, int cc_major, int cc_minor) {
  if (cc_major > 8 || (cc_major == 8 && cc_minor >= 9)) return;
  fail(ErrorKind::kUnsupported, "--fp8: ", gpu, " (compute capability ", cc_major, ".", cc_minor,
       ") has no FP8 tensor cores, which need 8.9 (Ada) or later, such as Hopper (9.0); build "
       "with --int8 or --fp16 instead");
}

std::map<std::string, float> fp8_scales_from_int8(const std::map<std::string, float>& int8) {
  std::map<std::string, float> fp8;
  for (const auto& [name, scale] : int8)
    fp8[name] = scale * (127.0f / quant::kE4M3Max);
  return fp8;
}

std::set<std::string> fp16_layer_names(const ir::Graph& graph,
                                       const std::vector<std::string>& names) {
  std::set<std::string> convs;
  for (const auto& node : graph.nodes())
    if (is_conv(*node)) convs.insert(node->name);
  std::string unknown;
  for (const std::string& name : names)
    if (!convs.contains(name)) unknown += (unknown.empty() ? "'" : ", '") + name + "'";
  if (!unknown.empty()) {
    std::string known;
    for (const std::string& name : convs)
      known += (known.empty() ? "" : ", ") + name;
    fail(ErrorKind::kInvalidArgument, "layer precision: ", unknown,
         " name no convolution of the model (its convolutions: ", known, ")");
  }
  return {names.begin(), names.end()};
}

}  // namespace anvil::builder
