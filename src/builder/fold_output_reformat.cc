#include "builder/fold_output_reformat.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace anvil::builder {

namespace {

using json = nlohmann::json;

bool is_io(const plan::Plan& plan, int id) {
  return std::any_of(plan.io.begin(), plan.io.end(),
                     [&](const plan::IoBinding& io) { return io.tensor_id == id; });
}

int reader_count(const plan::Plan& plan, int id) {
  int count = 0;
  for (const plan::LayerDesc& layer : plan.layers)
    count += static_cast<int>(std::count(layer.inputs.begin(), layer.inputs.end(), id));
  return count;
}

// The reformat only widens FP16 or copies FP32: no padding to drop, no
// spatial extent to reorder.
bool is_plain_copy(const plan::LayerDesc& reformat) {
  const json p = json::parse(reformat.params);
  const std::string layout = p.value("layout", "");
  return p.value("c", -1) == p.value("c_pad", -2) &&
         (layout == "NC" || (layout == "NCHW" && p.value("h", 0) == 1 && p.value("w", 0) == 1));
}

}  // namespace

int fold_output_reformat(plan::Plan& plan) {
  int folded = 0;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const plan::LayerDesc& reformat = plan.layers[i];
    if (reformat.kind != "reformat_out" || reformat.inputs.size() != 1 ||
        reformat.outputs.size() != 1 || !is_plain_copy(reformat))
      continue;
    const int stored = reformat.inputs[0];
    if (is_io(plan, stored) || reader_count(plan, stored) != 1) continue;
    const auto gemm = std::find_if(
        plan.layers.begin(), plan.layers.begin() + i,
        [&](const plan::LayerDesc& layer) { return layer.outputs == std::vector<int>{stored}; });
    if (gemm == plan.layers.begin() + i || gemm->kind != "gemm" || gemm->stream != reformat.stream)
      continue;
    const json params = json::parse(gemm->params);
    if (params.value("n", -1) != params.value("n_pad", -2)) continue;
    gemm->kind = "gemm_output";
    gemm->outputs = reformat.outputs;  // the stored tensor stays, written by no layer
    plan.layers.erase(plan.layers.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
    ++folded;
  }
  return folded;
}

}  // namespace anvil::builder
