#include "builder/respecialize.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "anvil/error.h"
#include "builder/lower.h"
#include "ir/graph.h"
#include "ops/window.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string out;
  for (std::size_t i = 0; i < dims.size(); ++i)
    out += (i ? "x" : "") + (dims[i] < 0 ? std::string("N") : std::to_string(dims[i]));
  return out;
}

// Height and width of a rank-4 tensor, or nothing for NC.
struct Hw {
  std::int64_t h = 1, w = 1;
};

std::optional<Hw> hw_of(const plan::TensorDesc& t) {
  if (t.layout == "NHWC") return Hw{t.dims.at(1), t.dims.at(2)};
  if (t.layout == "NCHW") return Hw{t.dims.at(2), t.dims.at(3)};
  return std::nullopt;
}

void set_hw(plan::TensorDesc& t, Hw hw) {
  if (t.layout == "NHWC") {
    t.dims.at(1) = hw.h;
    t.dims.at(2) = hw.w;
  } else if (t.layout == "NCHW") {
    t.dims.at(2) = hw.h;
    t.dims.at(3) = hw.w;
  }
}

class Respecializer {
 public:
  Respecializer(const plan::Plan& plan, const InputDims& inputs) : inputs_(inputs) {
    out_.anvil_version = plan.anvil_version;
    out_.target = plan.target;
    out_.options = plan.options;
    out_.tensors = plan.tensors;
    out_.io = plan.io;
    out_.profiles = plan.profiles;
    out_.layers = plan.layers;
  }

  plan::Plan run() {
    for (const plan::IoBinding& io : out_.io) {
      if (!io.is_input) continue;
      const auto it = inputs_.find(io.name);
      if (it == inputs_.end()) continue;
      plan::TensorDesc& t = tensor(io.tensor_id);
      if (it->second.size() != t.dims.size())
        fail(ErrorKind::kInvalidArgument, "input '", io.name, "' has ", t.dims.size(),
             " dims, got ", dims_text(it->second));
      for (std::size_t d = 1; d < t.dims.size(); ++d) {
        const bool channel = t.layout == "NCHW" ? d == 1 : d == t.dims.size() - 1;
        if (channel && it->second[d] != t.dims[d])
          fail(ErrorKind::kInvalidArgument, "input '", io.name, "' has ", t.dims[d],
               " channels, got ", dims_text(it->second));
        if (it->second[d] < 1)
          fail(ErrorKind::kInvalidArgument, "input '", io.name, "': dims must be >= 1, got ",
               dims_text(it->second));
        t.dims[d] = it->second[d];
      }
    }
    for (plan::LayerDesc& layer : out_.layers) {
      try {
        respecialize(layer);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kInvalidModel) throw;
        fail(ErrorKind::kInvalidArgument, "the network does not run at ", input_text(), ": ",
             e.what());
      }
    }
    return std::move(out_);
  }

 private:
  plan::TensorDesc& tensor(int id) { return out_.tensors.at(static_cast<std::size_t>(id)); }

  Hw spatial_input(const plan::LayerDesc& layer, std::size_t i) {
    const std::optional<Hw> hw = hw_of(tensor(layer.inputs.at(i)));
    if (!hw)
      fail(ErrorKind::kInvalidArgument, "plan layer '", layer.name, "' reads a [N, C] tensor",
           " where it needs NHWC");
    return *hw;
  }

  // The window of `p` (a conv's or pool's params) over an input of `in`;
  // writes in/out sizes and (for auto_pad SAME) pads back into `p`.
  Hw window(const plan::LayerDesc& layer, json& p, Hw in, bool pool) {
    ops::WindowAttributes a;
    a.kernel = pool ? std::vector<std::int64_t>{p.at("kernel_h"), p.at("kernel_w")}
                    : std::vector<std::int64_t>{p.at("r"), p.at("s")};
    a.strides = {p.at("stride_h"), p.at("stride_w")};
    a.dilations = {p.at("dil_h"), p.at("dil_w")};
    a.pads = {p.at("pad_top"), p.at("pad_left"), p.at("pad_bottom"), p.at("pad_right")};
    a.ceil_mode = pool && p.value("ceil_mode", false);
    const std::string auto_pad = p.value("auto_pad", "NOTSET");
    if (auto_pad == "SAME_UPPER") a.auto_pad = ops::AutoPad::kSameUpper;
    if (auto_pad == "SAME_LOWER") a.auto_pad = ops::AutoPad::kSameLower;
    ir::Node node;
    node.name = layer.name;
    node.op_type = layer.kind;
    const ops::AxisWindow h = ops::resolve_axis(node, a, 0, in.h);
    const ops::AxisWindow w = ops::resolve_axis(node, a, 1, in.w);
    p["in_h"] = h.in;
    p["in_w"] = w.in;
    p["out_h"] = h.out;
    p["out_w"] = w.out;
    p["pad_top"] = h.pad_begin;
    p["pad_bottom"] = h.pad_end;
    p["pad_left"] = w.pad_begin;
    p["pad_right"] = w.pad_end;
    return {h.out, w.out};
  }

  // A tensor the stem fusion (fuse_conv_max_pool.h) left in the plan
  // untouched by any layer (the conv's own output; the INT8 stem's FP16
  // pooled one): it keeps following its geometry, as lowering at the new
  // size would give it. Found by its old geometry.
  void set_bypassed(Hw before, std::int64_t k, Hw now) {
    if (touched_.empty()) {
      touched_.assign(out_.tensors.size(), false);
      for (const plan::LayerDesc& l : out_.layers)
        for (const std::vector<int>* ids : {&l.inputs, &l.outputs})
          for (const int id : *ids)
            touched_.at(static_cast<std::size_t>(id)) = true;
    }
    for (std::size_t id = 0; id < out_.tensors.size(); ++id) {
      plan::TensorDesc& t = out_.tensors[id];
      if (touched_[id] || t.layout != "NHWC" || t.dims.size() != 4) continue;
      if (t.dims[1] == before.h && t.dims[2] == before.w && t.dims[3] == k) {
        set_hw(t, now);
        touched_[id] = true;  // once
        return;
      }
    }
  }

  void check_same(const plan::LayerDesc& layer, int a, int b, const char* what) {
    if (tensor(a).dims != tensor(b).dims)
      fail(ErrorKind::kInvalidArgument, "the network does not run at ", input_text(), ": layer '",
           layer.name, "' ", what, " ", dims_text(tensor(a).dims), " and ",
           dims_text(tensor(b).dims), ", which differ at this size");
  }

  std::string input_text() const {
    std::string out;
    for (const auto& [name, dims] : inputs_)
      out += (out.empty() ? "" : ", ") + name + " " + dims_text(dims);
    return out.empty() ? "the plan's own dims" : out;
  }

  void respecialize(plan::LayerDesc& layer) {
    json p = json::parse(layer.params);
    const std::string& kind = layer.kind;
    const int y = layer.outputs.at(0);
    if (kind == "reformat_in" || kind == "reformat_out" || kind == "quantize" ||
        kind == "dequantize") {
      if (const std::optional<Hw> hw = hw_of(tensor(layer.inputs.at(0)))) {
        p["h"] = hw->h;
        p["w"] = hw->w;
        set_hw(tensor(y), *hw);
      }
    } else if (kind == "conv" || kind == "conv_int8") {
      set_hw(tensor(y), window(layer, p, spatial_input(layer, 0), false));
      if (layer.inputs.size() > 1)
        check_same(layer, layer.inputs[1], y, "adds a residual and an output of");
    } else if (kind == "conv_max_pool" || kind == "conv_max_pool_int8") {
      const Hw before{p.at("out_h"), p.at("out_w")};
      const Hw pooled_before{p.at("pool").at("out_h"), p.at("pool").at("out_w")};
      const Hw conv = window(layer, p, spatial_input(layer, 0), false);
      const Hw pooled = window(layer, p.at("pool"), conv, true);
      set_hw(tensor(y), pooled);
      set_bypassed(before, p.at("k"), conv);
      // A stem that reads the engine input itself keeps the FP16 storage a
      // caller may preformat as its input 1, at the input's size.
      if (layer.inputs.size() == 2) set_hw(tensor(layer.inputs[1]), spatial_input(layer, 0));
      // The INT8 stem also bypasses the FP16 pooled tensor that the quantize
      // it absorbed read (fuse_conv_max_pool.h).
      if (kind == "conv_max_pool_int8") set_bypassed(pooled_before, p.at("k"), pooled);
    } else if (kind == "pool") {
      set_hw(tensor(y), window(layer, p, spatial_input(layer, 0), true));
    } else if (kind == "global_avg_pool" || kind == "global_avg_pool_int8") {
      const Hw in = spatial_input(layer, 0);
      p["h"] = in.h;
      p["w"] = in.w;
    } else if (kind == "eltwise") {
      tensor(y).dims = tensor(layer.inputs.at(0)).dims;
      if (layer.inputs.size() > 1) check_same(layer, layer.inputs[0], layer.inputs[1], "adds");
    } else if (kind == "gemm" || kind == "gemm_output") {
      if (hw_of(tensor(layer.inputs.at(0))))
        fail(ErrorKind::kUnsupported, "plan layer '", layer.name, "' (", kind,
             ") reads a tensor whose size depends on the input's height and width");
    } else {
      fail(ErrorKind::kUnsupported, "plan layer '", layer.name, "' of kind '", kind,
           "': its geometry cannot be re-derived for another input height and width");
    }
    layer.params = p.dump();
  }

  const InputDims& inputs_;
  plan::Plan out_;
  std::vector<bool> touched_;  // by tensor id: read or written by a layer
};

}  // namespace

plan::Plan respecialize(const plan::Plan& plan, const InputDims& inputs) {
  return Respecializer(plan, inputs).run();
}

bool has_spatial_ranges(const plan::Plan& plan) {
  for (const plan::Profile& profile : plan.profiles)
    for (const auto& [name, range] : profile.inputs)
      for (const plan::IoBinding& io : plan.io) {
        if (!io.is_input || io.name != name) continue;
        const auto& dims = plan.tensors.at(static_cast<std::size_t>(io.tensor_id)).dims;
        for (std::size_t d = 1; d < dims.size() && d < range.max.size(); ++d)
          if (range.min.at(d) != dims[d] || range.max.at(d) != dims[d]) return true;
      }
  return false;
}

InputDims profile_dims(const plan::Plan& plan, int profile, const std::string& which) {
  InputDims out;
  for (const auto& [name, range] : plan.profiles.at(static_cast<std::size_t>(profile)).inputs)
    out[name] = which == "min" ? range.min : which == "opt" ? range.opt : range.max;
  return out;
}

std::size_t largest_arena_bytes(const plan::Plan& plan) {
  const bool spatial = has_spatial_ranges(plan);
  std::size_t largest = 0;
  for (std::size_t i = 0; i < plan.profiles.size(); ++i) {
    std::int64_t batch = 1;
    for (const auto& [name, range] : plan.profiles[i].inputs)
      batch = std::max(batch, range.max.at(0));
    const int profile = static_cast<int>(i);
    largest = std::max(
        largest,
        spatial
            ? plan_arena(respecialize(plan, profile_dims(plan, profile, "max")), batch).arena_bytes
            : plan_arena(plan, batch).arena_bytes);
  }
  return largest;
}

void check_spatial_profiles(const plan::Plan& plan) {
  if (!has_spatial_ranges(plan)) return;
  for (std::size_t i = 0; i < plan.profiles.size(); ++i)
    for (const char* which : {"min", "opt", "max"}) {
      try {
        respecialize(plan, profile_dims(plan, static_cast<int>(i), which));
      } catch (const Error& e) {
        fail(e.kind(), "optimization profile ", i, "'s ", which, " shape: ", e.what(),
             e.kind() == ErrorKind::kUnsupported
                 ? "; build with a fixed height and width (min = opt = max) instead"
                 : "; narrow the profile's range");
      }
    }
}

}  // namespace anvil::builder
