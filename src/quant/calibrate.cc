#include "quant/calibrate.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "anvil/error.h"
#include "ops/op.h"
#include "reference/reference_runtime.h"

namespace anvil::quant {

namespace {

// The activation operands of an op an INT8 engine runs in integer arithmetic.
std::span<const std::size_t> quantized_operands(const ir::Node& node) {
  static constexpr std::size_t kConv[] = {0};
  static constexpr std::size_t kFusedConv[] = {0, 3};
  static constexpr std::size_t kProduct[] = {0, 1};
  const bool anvil = node.domain == ops::kAnvilDomain;
  const bool onnx = node.domain.empty() || node.domain == "ai.onnx";
  if (onnx && node.op_type == "Conv") return kConv;
  if (anvil && node.op_type == "FusedConv") return kFusedConv;
  if ((onnx && (node.op_type == "Gemm" || node.op_type == "MatMul")) ||
      (anvil && node.op_type == "FusedGemm"))
    return kProduct;
  return {};
}

bool calibratable(const ir::Value* value) {
  return value && !value->is_constant() && value->dtype == DType::kFloat32;
}

void add_to_histogram(Histogram& histogram, const ir::Value& value, const Tensor& tensor,
                      std::size_t batch) {
  if (tensor.dtype() != DType::kFloat32)
    fail(ErrorKind::kInternal, "calibration: tensor '", value.name, "' is ",
         to_string(tensor.dtype()), " at run time but float32 in the graph");
  try {
    histogram.add(tensor.values<float>());
  } catch (const Error& e) {
    fail(e.kind(), "calibration batch ", batch, ", tensor '", value.name, "': ", e.what());
  }
}

// Settings that would only fail after the whole run (a bad bin count, fewer
// bins than the entropy calibrator's levels) fail now, on a flat histogram.
void check_settings(const Calibrator& calibrator, int num_bins) {
  const Histogram probe(num_bins);  // throws for a bad bin count
  std::vector<std::uint64_t> flat(probe.counts().size(), 1);
  calibrator.compute_amax(Histogram::from_counts(std::move(flat), 1.0, 1.0f));
}

}  // namespace

std::string fnv1a64_hex(std::span<const std::byte> bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::byte b : bytes) {
    hash ^= static_cast<std::uint64_t>(b);
    hash *= 0x100000001b3ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string hash_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kIo, path.string(), ": cannot open the model file to hash it");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(ErrorKind::kIo, path.string(), ": cannot read the model file");
  return fnv1a64_hex(std::as_bytes(std::span<const char>(bytes)));
}

std::string calibration_fingerprint(std::string_view model_hash,
                                    const std::map<std::string, Extents>& input_shapes,
                                    int num_bins) {
  std::string inputs;
  for (const auto& [name, extents] : input_shapes)
    inputs += cat(inputs.empty() ? "" : ";", name, ":", to_string(extents));
  return cat("model=", model_hash, " input=", inputs, " bins=", num_bins);
}

std::vector<const ir::Value*> calibrated_values(const ir::Graph& graph) {
  std::vector<const ir::Value*> values;
  std::unordered_set<const ir::Value*> seen;
  auto take = [&](const ir::Value* v) {
    if (calibratable(v) && seen.insert(v).second) values.push_back(v);
  };
  for (const ir::Value* in : graph.inputs)
    take(in);
  for (const auto& node : graph.nodes())
    for (std::size_t i : quantized_operands(*node))
      take(node->input(i));
  return values;
}

CalibrationResult calibrate(const ir::Graph& graph, BatchSource& batches,
                            const Calibrator& calibrator, const CalibrateOptions& options) {
  if (options.model_hash.empty())
    fail(ErrorKind::kInvalidArgument, "calibration: no model hash for the fingerprint");
  std::size_t total = batches.size();
  if (options.max_batches != 0) total = std::min(total, options.max_batches);
  if (total == 0) fail(ErrorKind::kInvalidArgument, "calibration: no calibration batches");
  check_settings(calibrator, options.num_bins);

  CalibrationResult result;
  std::unordered_map<const ir::Value*, Histogram*> wanted;
  for (const ir::Value* v : calibrated_values(graph))
    wanted[v] = &result.histograms.try_emplace(v->name, options.num_bins).first->second;

  const reference::ReferenceRuntime runtime(graph);
  for (std::size_t b = 0; b < total; ++b) {
    const Batch batch = batches.batch(b);
    auto observe = [&](const ir::Value& value, const Tensor& tensor) {
      auto it = wanted.find(&value);
      if (it != wanted.end()) add_to_histogram(*it->second, value, tensor, b);
    };
    // The runtime checks the inputs first, so a batch that does not fit the
    // model fails before any histogram sees part of it.
    runtime.run(batch, observe);
    for (const ir::Value* in : graph.inputs) {
      auto it = wanted.find(in);
      if (it != wanted.end()) add_to_histogram(*it->second, *in, batch.at(in->name), b);
    }
    if (options.progress) options.progress(b + 1, total);
  }

  result.batches = total;
  result.table.calibrator = calibrator.signature();
  result.table.fingerprint =
      calibration_fingerprint(options.model_hash, batches.shapes(), options.num_bins);
  for (const auto& [name, histogram] : result.histograms)
    result.table.amax[name] = calibrator.compute_amax(histogram);
  return result;
}

}  // namespace anvil::quant
