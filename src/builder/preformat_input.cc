#include "builder/preformat_input.h"

#include <algorithm>
#include <string>

#include "anvil/error.h"
#include "builder/lower.h"

namespace anvil::builder {

namespace {

bool reads(const plan::LayerDesc& layer, int tensor) {
  return std::find(layer.inputs.begin(), layer.inputs.end(), tensor) != layer.inputs.end();
}

bool is_io(const plan::Plan& plan, int tensor) {
  return std::any_of(plan.io.begin(), plan.io.end(),
                     [&](const plan::IoBinding& io) { return io.tensor_id == tensor; });
}

}  // namespace

PreformatSite preformat_site(const plan::Plan& plan, std::string_view input) {
  const plan::IoBinding* binding = nullptr;
  std::string inputs;
  for (const plan::IoBinding& io : plan.io) {
    if (!io.is_input) continue;
    if (io.name == input) binding = &io;
    inputs += (inputs.empty() ? "" : ", ") + io.name;
  }
  if (!binding)
    fail(ErrorKind::kInvalidArgument, "the engine has no input '", input,
         "'; its inputs are: ", inputs);
  PreformatSite site;
  site.input_tensor = binding->tensor_id;
  std::string readers;
  int count = 0;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const plan::LayerDesc& layer = plan.layers[i];
    if (!reads(layer, site.input_tensor)) continue;
    ++count;
    readers += (readers.empty() ? "'" : ", '") + layer.name + "' (" + layer.kind + ")";
    site.layer = static_cast<int>(i);
  }
  const plan::LayerDesc* reader =
      count == 1 ? &plan.layers[static_cast<std::size_t>(site.layer)] : nullptr;
  if (reader && reader->kind == "reformat_in" && reader->outputs.size() == 1) {
    site.storage = reader->outputs[0];
    return site;
  }
  if (reader && (reader->kind == "conv_max_pool" || reader->kind == "conv_max_pool_int8") &&
      reader->inputs.size() == 2 && reader->inputs[0] == site.input_tensor) {
    site.storage = reader->inputs[1];
    site.skip_layer = false;
    return site;
  }
  fail(ErrorKind::kUnsupported, "input '", input,
       "' cannot be preformatted: the engine's storage of it is written by one reformat_in "
       "layer (or read by one stem layer that reads the input itself) only in plans where that "
       "layer alone reads the input; here ",
       count == 0 ? std::string("no layer reads it") : cat("it is read by ", readers),
       "; bind it with set_tensor_address instead");
}

std::ptrdiff_t input_consumed_after(const plan::Plan& plan,
                                    std::span<const PreformatSite> skipped) {
  std::ptrdiff_t last = -1;
  bool on_aux_stream = false;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const plan::LayerDesc& layer = plan.layers[i];
    bool reader = false;
    bool skip = false;
    for (const PreformatSite& site : skipped) {
      skip = skip || (site.skip_layer && site.layer == static_cast<int>(i));
      reader = reader || reads(layer, site.storage);
    }
    if (skip) continue;
    for (const plan::IoBinding& io : plan.io)
      reader = reader || (io.is_input && reads(layer, io.tensor_id));
    if (!reader) continue;
    last = static_cast<std::ptrdiff_t>(i);
    on_aux_stream = on_aux_stream || layer.stream > 0;
  }
  return on_aux_stream ? static_cast<std::ptrdiff_t>(plan.layers.size()) : last;
}

int storage_clash(const plan::Plan& plan, const PreformatSite& site,
                  std::span<const std::size_t> offsets, std::int64_t batch) {
  auto bytes = [&](int id) {
    return tensor_bytes(plan.tensors.at(static_cast<std::size_t>(id)), batch);
  };
  const std::size_t begin = offsets[static_cast<std::size_t>(site.storage)];
  const std::size_t end = begin + bytes(site.storage);
  for (int i = 0; i < site.layer; ++i) {
    const plan::LayerDesc& layer = plan.layers[static_cast<std::size_t>(i)];
    for (const auto* ids : {&layer.inputs, &layer.outputs})
      for (const int id : *ids) {
        // IO tensors are the caller's buffers, not arena bytes.
        if (id == site.storage || is_io(plan, id)) continue;
        const std::size_t at = offsets[static_cast<std::size_t>(id)];
        const std::size_t size = bytes(id);
        if (size > 0 && at < end && begin < at + size) return id;
      }
  }
  return -1;
}

}  // namespace anvil::builder
