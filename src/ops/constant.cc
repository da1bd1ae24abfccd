// Constant: a tensor held by the node itself, in exactly one of the
// attributes value (any dtype), value_float(s) (float32) or value_int(s)
// (int64). Sparse and string constants are not supported.
#include <array>
#include <string_view>

#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Constant final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const Tensor t = value(ctx);
    ctx.set_output(0, t.dtype(), ir::Shape::of(t.extents()));
  }

  void run(RunContext& ctx) const override {
    const Tensor t = value(concrete_context(ctx));
    copy_bytes(t, ctx.outputs[0]);
  }

 private:
  static Tensor value(const InferContext& ctx) {
    static constexpr std::array<std::string_view, 8> kNames = {
        "value",      "value_float",  "value_floats", "value_int",
        "value_ints", "sparse_value", "value_string", "value_strings"};
    const ir::Attributes& attrs = ctx.attributes();
    std::string given;
    int count = 0;
    for (std::string_view name : kNames)
      if (attrs.has(std::string(name))) {
        given = name;
        ++count;
      }
    if (count != 1)
      ctx.fail(
          "needs exactly one of the attributes value, value_float(s), value_int(s), "
          "value_string(s), sparse_value; got ",
          count);
    if (given == "value") return attrs.get_tensor("value");
    if (given == "value_float") return Tensor::from<float>({}, {attrs.get_float("value_float", 0)});
    if (given == "value_int") return Tensor::from<std::int64_t>({}, {attrs.get_int("value_int")});
    if (given == "value_floats") {
      const std::vector<float> v = attrs.get_floats("value_floats");
      return Tensor::from<float>({static_cast<std::int64_t>(v.size())}, std::span<const float>(v));
    }
    if (given == "value_ints") {
      const std::vector<std::int64_t> v = attrs.get_ints("value_ints");
      return Tensor::from<std::int64_t>({static_cast<std::int64_t>(v.size())},
                                        std::span<const std::int64_t>(v));
    }
    ctx.unsupported("attribute ", given, ": sparse and string constants are not supported");
  }
};

ANVIL_REGISTER_OP(Constant, "Constant", {.min_inputs = 0, .max_inputs = 0});

}  // namespace
}  // namespace anvil::ops
