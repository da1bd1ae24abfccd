#include "test_case.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "anvil/error.h"
#include "onnx/importer.h"
#include "onnx/onnx_subset.pb.h"
#include "onnx/tensor_proto.h"
#include "reference/reference_runtime.h"

namespace anvil::testing {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> model_op_types(const fs::path& model_path) {
  onnx::ModelProto model;
  const std::string bytes = onnx::read_file(model_path);
  std::set<std::string> ops;
  if (model.ParseFromString(bytes))
    for (const auto& node : model.graph().node())
      ops.insert(node.op_type());
  return {ops.begin(), ops.end()};
}

std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) files.push_back(entry.path());
  // input_10 after input_9: order by the number after the prefix.
  std::sort(files.begin(), files.end(), [&](const fs::path& a, const fs::path& b) {
    auto index = [&](const fs::path& p) {
      return std::stoi(p.stem().string().substr(prefix.size()));
    };
    return index(a) < index(b);
  });
  return files;
}

template <typename T>
double to_double(const Tensor& t, std::int64_t i) {
  return static_cast<double>(t.data<T>()[i]);
}

double element(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::kFloat32:
      return to_double<float>(t, i);
    case DType::kFloat64:
      return to_double<double>(t, i);
    case DType::kInt64:
      return to_double<std::int64_t>(t, i);
    case DType::kInt32:
      return to_double<std::int32_t>(t, i);
    case DType::kInt8:
      return to_double<std::int8_t>(t, i);
    case DType::kUInt8:
    case DType::kBool:
      return static_cast<double>(reinterpret_cast<const std::uint8_t*>(t.bytes())[i]);
    case DType::kFloat16:
    case DType::kFloat8E4M3:
    case DType::kUndefined:
      break;
  }
  fail(ErrorKind::kUnsupported, "comparing ", to_string(t.dtype()), " outputs");
}

// Returns an empty string when `got` matches `want`, else what differs.
std::string compare(const Tensor& got, const Tensor& want, const Tolerance& tol,
                    CaseResult& result) {
  if (got.dtype() != want.dtype())
    return cat("dtype ", to_string(got.dtype()), ", expected ", to_string(want.dtype()));
  if (got.extents() != want.extents())
    return cat("shape ", to_string(got.extents()), ", expected ", to_string(want.extents()));
  double max_abs = 0.0, max_want = 0.0;
  std::string first_bad;
  for (std::int64_t i = 0, n = want.element_count(); i < n; ++i) {
    const double g = element(got, i), w = element(want, i);
    if (std::isnan(w) && std::isnan(g)) continue;
    const double err = std::abs(g - w);
    if (!(err <= tol.atol + tol.rtol * std::abs(w)) && first_bad.empty())
      first_bad = cat("element ", i, " is ", g, ", expected ", w);
    if (std::isfinite(err)) max_abs = std::max(max_abs, err);
    if (std::isfinite(w)) max_want = std::max(max_want, std::abs(w));
  }
  result.max_abs_error = std::max(result.max_abs_error, max_abs);
  if (max_want > 0) result.max_rel_error = std::max(result.max_rel_error, max_abs / max_want);
  return first_bad;
}

void run_data_set(const reference::ReferenceRuntime& runtime, const ir::Graph& graph,
                  const fs::path& set_dir, const Tolerance& tol, CaseResult& result) {
  std::map<std::string, Tensor> inputs;
  std::size_t index = 0;
  for (const fs::path& file : sorted_files(set_dir, "input_")) {
    std::string name;
    Tensor t = onnx::read_tensor_file(file, &name);
    if (!graph.find_value(name) && index < graph.inputs.size()) name = graph.inputs[index]->name;
    inputs[name] = std::move(t);
    ++index;
  }
  std::vector<Tensor> outputs = runtime.run(inputs);
  std::vector<fs::path> expected = sorted_files(set_dir, "output_");
  if (expected.size() != outputs.size())
    fail(ErrorKind::kInternal, set_dir.string(), ": ", outputs.size(), " outputs, expected ",
         expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    std::string diff = compare(outputs[i], onnx::read_tensor_file(expected[i]), tol, result);
    if (!diff.empty() && result.outcome == Outcome::kPassed) {
      result.outcome = Outcome::kFailed;
      result.reason = cat(set_dir.filename().string(), " output ", i, ": ", diff);
    }
  }
}

}  // namespace

CaseResult run_test_case(const fs::path& dir, const Tolerance& tolerance) {
  CaseResult result;
  const fs::path model_path = dir / "model.onnx";
  result.ops = model_op_types(model_path);
  try {
    ir::Graph graph = onnx::import_model(model_path);
    reference::ReferenceRuntime runtime(graph);
    std::vector<fs::path> sets;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_directory()) sets.push_back(entry.path());
    std::sort(sets.begin(), sets.end());
    for (const fs::path& set : sets)
      run_data_set(runtime, graph, set, tolerance, result);
  } catch (const Error& e) {
    result.outcome = e.kind() == ErrorKind::kUnsupported ? Outcome::kSkipped : Outcome::kFailed;
    result.reason = e.what();
  }
  return result;
}

}  // namespace anvil::testing
