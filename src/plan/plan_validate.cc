// Cross-reference checks of a plan read from a file (or about to be written):
// everything the runtime will index with must be in range, so that it can
// trust the plan without checking again.
#include <algorithm>
#include <limits>
#include <set>

#include "anvil/error.h"
#include "plan/plan_metadata.h"
#include "plan/streams.h"

namespace anvil::plan {
namespace {

// Rank and channel position of each layout the runtime knows.
struct LayoutInfo {
  std::size_t rank;
  std::size_t channel_axis;
};

bool layout_info(const std::string& layout, LayoutInfo& info) {
  if (layout == "NCHW")
    info = {4, 1};
  else if (layout == "NHWC")
    info = {4, 3};
  else if (layout == "NC")
    info = {2, 1};
  else
    return false;
  return true;
}

class Validator {
 public:
  Validator(const Plan& plan, std::string_view label) : plan_(plan), label_(label) {}

  void run() {
    if (plan_.options.workspace_bytes < 0)
      bad("options.workspace_bytes is negative: ", plan_.options.workspace_bytes);
    for (std::size_t i = 0; i < plan_.tensors.size(); ++i)
      check_tensor(i);
    check_io();
    for (std::size_t i = 0; i < plan_.profiles.size(); ++i)
      check_profile(i);
    check_dynamic_inputs_profiled();
    std::set<std::string> layer_names;
    for (const LayerDesc& layer : plan_.layers) {
      if (layer.name.empty() || !layer_names.insert(layer.name).second)
        bad("layer name '", layer.name, "' is empty or used twice");
      check_layer(layer);
    }
  }

 private:
  template <typename... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail(ErrorKind::kInvalidArgument, label_, ": inconsistent plan: ", parts...);
  }

  bool is_tensor(int id) const {
    return id >= 0 && static_cast<std::size_t>(id) < plan_.tensors.size();
  }

  void check_tensor(std::size_t index) const {
    const TensorDesc& t = plan_.tensors[index];
    if (t.id < 0 || static_cast<std::size_t>(t.id) != index)
      bad("tensors[", index, "] has id ", t.id, "; ids must be 0..", plan_.tensors.size() - 1,
          " in order");
    if (t.dtype == DType::kUndefined) bad("tensor '", t.name, "' has no dtype");
    LayoutInfo layout{};
    if (!layout_info(t.layout, layout))
      bad("tensor '", t.name, "' has layout \"", t.layout, "\"; expected NCHW, NHWC or NC");
    if (t.dims.size() != layout.rank)
      bad("tensor '", t.name, "' has ", t.dims.size(), " dims, layout ", t.layout, " needs ",
          layout.rank);
    for (std::size_t d = 0; d < t.dims.size(); ++d)
      if (t.dims[d] < 1 && !(d == 0 && t.dims[d] == -1))
        bad("tensor '", t.name, "' has dim ", d, " = ", t.dims[d],
            "; dims are positive, or -1 for a dynamic batch (dim 0)");
    if (t.channel_padding_to && *t.channel_padding_to < t.dims[layout.channel_axis])
      bad("tensor '", t.name, "' pads ", t.dims[layout.channel_axis], " channels to ",
          *t.channel_padding_to);
  }

  void check_io() const {
    std::set<std::string> names;
    bool has_input = false, has_output = false;
    for (const IoBinding& io : plan_.io) {
      if (io.name.empty()) bad("an IO binding has an empty name");
      if (!names.insert(io.name).second) bad("IO name '", io.name, "' is bound twice");
      if (!is_tensor(io.tensor_id))
        bad("IO '", io.name, "' binds tensor ", io.tensor_id, ", not a tensor id (the plan has ",
            plan_.tensors.size(), " tensors)");
      (io.is_input ? has_input : has_output) = true;
    }
    if (!has_input || !has_output) bad("the plan needs at least one input and one output");
  }

  const IoBinding* input_named(const std::string& name) const {
    for (const IoBinding& io : plan_.io)
      if (io.is_input && io.name == name) return &io;
    return nullptr;
  }

  void check_profile(std::size_t index) const {
    for (const auto& [name, dim] : plan_.profiles[index].inputs) {
      const IoBinding* io = input_named(name);
      if (!io) bad("profile ", index, " names '", name, "', which is not an input");
      const auto& dims = plan_.tensors[static_cast<std::size_t>(io->tensor_id)].dims;
      if (dim.min.size() != dims.size() || dim.opt.size() != dims.size() ||
          dim.max.size() != dims.size())
        bad("profile ", index, " input '", name, "': min, opt and max need ", dims.size(),
            " dims each");
      const std::string& layout = plan_.tensors[static_cast<std::size_t>(io->tensor_id)].layout;
      for (std::size_t d = 0; d < dims.size(); ++d) {
        const bool ordered =
            1 <= dim.min[d] && dim.min[d] <= dim.opt[d] && dim.opt[d] <= dim.max[d];
        // An image's height and width may vary (builder/respecialize.h): the
        // tensors and params describe profile 0's opt shape.
        const bool spatial = layout == "NCHW" && d >= 2;
        const bool spatial_ok = spatial && (index != 0 || dim.opt[d] == dims[d]);
        const bool fixed_ok =
            dims[d] == -1 || spatial_ok || (dim.min[d] == dims[d] && dim.max[d] == dims[d]);
        if (!ordered || !fixed_ok)
          bad("profile ", index, " input '", name, "' dim ", d, ": min ", dim.min[d], ", opt ",
              dim.opt[d], ", max ", dim.max[d], " for a tensor dim of ", dims[d]);
      }
    }
  }

  void check_dynamic_inputs_profiled() const {
    for (const IoBinding& io : plan_.io) {
      if (!io.is_input || plan_.tensors[static_cast<std::size_t>(io.tensor_id)].dims[0] != -1)
        continue;
      if (plan_.profiles.empty()) bad("input '", io.name, "' has a dynamic batch but no profile");
      for (std::size_t i = 0; i < plan_.profiles.size(); ++i)
        if (!plan_.profiles[i].inputs.contains(io.name))
          bad("profile ", i, " lacks the dynamic input '", io.name, "'");
    }
  }

  void check_layer(const LayerDesc& layer) const {
    if (layer.kind.empty()) bad("layer '", layer.name, "' has no kind");
    for (const int id : layer.inputs)
      if (!is_tensor(id))
        bad("layer '", layer.name, "' reads tensor ", id, ", not a tensor id (the plan has ",
            plan_.tensors.size(), " tensors)");
    for (const int id : layer.outputs)
      if (!is_tensor(id))
        bad("layer '", layer.name, "' writes tensor ", id, ", not a tensor id (the plan has ",
            plan_.tensors.size(), " tensors)");
    for (std::size_t i = 0; i < layer.weights.size(); ++i)
      check_weight(layer, i);
    check_stream(layer);
  }

  // The runtime records the input-consumed event on stream 0, so every
  // reader of an engine input runs there.
  void check_stream(const LayerDesc& layer) const {
    if (layer.stream < 0 || layer.stream > kMaxAuxStreams)
      bad("layer '", layer.name, "' runs on stream ", layer.stream, ", not 0..", kMaxAuxStreams);
    if (layer.stream == 0) return;
    for (const IoBinding& io : plan_.io)
      if (io.is_input &&
          std::find(layer.inputs.begin(), layer.inputs.end(), io.tensor_id) != layer.inputs.end())
        bad("layer '", layer.name, "' reads the engine input '", io.name, "' on auxiliary stream ",
            layer.stream, "; input readers run on stream 0");
  }

  void check_weight(const LayerDesc& layer, std::size_t index) const {
    const WeightRef& w = layer.weights[index];
    const auto blob = static_cast<std::int64_t>(plan_.weights.size());
    if (w.offset < 0 || w.bytes < 0 || w.offset > blob || w.bytes > blob - w.offset)
      bad("layer '", layer.name, "' weight ", index, " (", w.bytes, " bytes at offset ", w.offset,
          ") lies outside the ", blob, "-byte weights blob");
    const auto element = static_cast<std::int64_t>(size_of(w.dtype));
    if (element == 0 || w.offset % element != 0)
      bad("layer '", layer.name, "' weight ", index, " at offset ", w.offset,
          " is not aligned to its ", element, "-byte elements");
    std::int64_t count = 1;
    for (const std::int64_t d : w.dims) {
      if (d < 0 || (d > 0 && count > std::numeric_limits<std::int64_t>::max() / d))
        bad("layer '", layer.name, "' weight ", index, " has a bad dim ", d);
      count *= d;
    }
    if (count > w.bytes / element || count * element != w.bytes)
      bad("layer '", layer.name, "' weight ", index, " holds ", w.bytes, " bytes; its dims and ",
          to_string(w.dtype), " need ", count, " elements");
  }

  const Plan& plan_;
  std::string_view label_;
};

}  // namespace

void validate_plan(const Plan& plan, std::string_view label) {
  Validator(plan, label).run();
}

}  // namespace anvil::plan
