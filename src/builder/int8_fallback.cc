#include "builder/int8_fallback.h"

#include <algorithm>

#include "anvil/error.h"
#include "builder/lower.h"

namespace anvil::builder {

namespace {

class PlanIndex {
 public:
  PlanIndex(const plan::Plan& plan, std::int64_t batch) : plan_(plan), batch_(batch) {}

  // Elements of tensor `id` at the batch, padding included.
  double elements(int id) const {
    const plan::TensorDesc& t = plan_.tensors.at(static_cast<std::size_t>(id));
    return static_cast<double>(tensor_bytes(t, batch_)) / static_cast<double>(size_of(t.dtype));
  }

  // Whether a layer of `kind` writes tensor `id`.
  bool written_by(int id, std::string_view kind) const {
    return std::any_of(plan_.layers.begin(), plan_.layers.end(), [&](const plan::LayerDesc& l) {
      return l.kind == kind && std::find(l.outputs.begin(), l.outputs.end(), id) != l.outputs.end();
    });
  }

  // Whether a layer of `kind` reads tensor `id`.
  bool read_by(int id, std::string_view kind) const {
    return std::any_of(plan_.layers.begin(), plan_.layers.end(), [&](const plan::LayerDesc& l) {
      return l.kind == kind && std::find(l.inputs.begin(), l.inputs.end(), id) != l.inputs.end();
    });
  }

 private:
  const plan::Plan& plan_;
  std::int64_t batch_;
};

// One INT8 and one FP16 copy of every element: what a reformat reads and writes.
constexpr double kReformatBytesPerElement = 1.0 + 2.0;

}  // namespace

std::vector<Int8Fallback> int8_fallbacks(const plan::Plan& plan, std::int64_t batch,
                                         const std::map<std::string, float>& int8_ms,
                                         const std::map<std::string, float>& fp16_ms,
                                         double bytes_per_ms) {
  const PlanIndex index(plan, batch);
  std::vector<Int8Fallback> out;
  for (const plan::LayerDesc& layer : plan.layers) {
    if (layer.kind != "conv_int8") continue;
    const auto int8 = int8_ms.find(layer.name);
    const auto fp16 = fp16_ms.find(layer.name);
    if (int8 == int8_ms.end() || fp16 == fp16_ms.end()) continue;
    double elements = 0;  // reformatted, net
    // An input that a quantize made, or that a dequantize already reads, has
    // its FP16 form in the plan already; the stem writes either form
    // (builder/fuse_conv_max_pool.h's fold), so its output costs nothing.
    for (const int id : layer.inputs)
      if (!index.written_by(id, "quantize") && !index.written_by(id, "conv_max_pool_int8") &&
          !index.read_by(id, "dequantize"))
        elements += index.elements(id);
    const int y = layer.outputs.at(0);
    if (index.read_by(y, "conv_int8")) elements += index.elements(y);
    if (index.read_by(y, "dequantize")) elements -= index.elements(y);
    const double reformat_ms =
        bytes_per_ms > 0 ? elements * kReformatBytesPerElement / bytes_per_ms : 0.0;
    if (fp16->second + reformat_ms >= int8->second) continue;
    const bool fp8 = layer.params.find("\"float8e4m3fn\"") != std::string::npos;
    out.push_back({layer.name, cat(layer.name, fp8 ? ": FP8 " : ": INT8 ", int8->second,
                                   " ms, FP16 ", fp16->second, " ms + reformats ",
                                   static_cast<float>(reformat_ms), " ms at batch ", batch)});
  }
  return out;
}

}  // namespace anvil::builder
