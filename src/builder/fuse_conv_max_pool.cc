#include "builder/fuse_conv_max_pool.h"

#include <nlohmann/json.hpp>

namespace anvil::builder {

namespace {

using json = nlohmann::json;

bool all_equal(const json& p, std::initializer_list<const char*> keys, int value) {
  for (const char* key : keys)
    if (!p.contains(key) || p[key] != value) return false;
  return true;
}

bool is_stem_conv(const plan::LayerDesc& layer) {
  if (layer.kind != "conv") return false;
  const json p = json::parse(layer.params);
  const std::string act = p.value("activation", "");
  return all_equal(p, {"c_pad"}, 4) && all_equal(p, {"k_pad"}, 64) && all_equal(p, {"r", "s"}, 7) &&
         all_equal(p, {"stride_h", "stride_w"}, 2) &&
         all_equal(p, {"pad_top", "pad_left", "pad_bottom", "pad_right"}, 3) &&
         all_equal(p, {"dil_h", "dil_w", "groups"}, 1) && p.value("has_residual", true) == false &&
         (act == "relu" || act == "none");
}

bool is_stem_pool(const plan::LayerDesc& layer) {
  if (layer.kind != "pool") return false;
  const json p = json::parse(layer.params);
  return p.value("mode", "") == "max" && all_equal(p, {"kernel_h", "kernel_w"}, 3) &&
         all_equal(p, {"stride_h", "stride_w"}, 2) &&
         all_equal(p, {"pad_top", "pad_left", "pad_bottom", "pad_right"}, 1) &&
         all_equal(p, {"dil_h", "dil_w"}, 1) && p.value("ceil_mode", true) == false;
}

// How many layers read tensor `id`, and whether it is an IO tensor.
int readers(const plan::Plan& plan, int id) {
  int count = 0;
  for (const plan::IoBinding& io : plan.io)
    if (io.tensor_id == id) return -1;
  for (const plan::LayerDesc& layer : plan.layers)
    for (int input : layer.inputs)
      count += input == id;
  return count;
}

}  // namespace

int fuse_conv_max_pool(plan::Plan& plan) {
  int fused = 0;
  for (std::size_t i = 0; i + 1 < plan.layers.size(); ++i) {
    plan::LayerDesc& conv = plan.layers[i];
    if (!is_stem_conv(conv) || conv.outputs.size() != 1) continue;
    const int between = conv.outputs[0];
    if (readers(plan, between) != 1) continue;
    std::size_t j = i + 1;
    while (j < plan.layers.size() && plan.layers[j].inputs != std::vector<int>{between})
      ++j;
    if (j == plan.layers.size() || !is_stem_pool(plan.layers[j])) continue;
    plan::LayerDesc& pool = plan.layers[j];
    json params = json::parse(conv.params);
    params["pool"] = json::parse(pool.params);
    conv.name += " + " + pool.name;
    conv.kind = "conv_max_pool";
    conv.params = params.dump();
    conv.outputs = pool.outputs;
    plan.layers.erase(plan.layers.begin() + static_cast<std::ptrdiff_t>(j));
    ++fused;
  }
  return fused;
}

}  // namespace anvil::builder
