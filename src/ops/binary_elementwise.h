// Base class of the binary arithmetic ops (Add, Sub, Mul, Div): NumPy
// multidirectional broadcasting over float32, and over int64 for the shape
// arithmetic exported graphs carry (Shape -> Gather -> Mul -> Reshape).
//
// A derived op (CRTP) provides
//   static float apply(float a, float b);
//   static std::int64_t apply(std::int64_t a, std::int64_t b);
// and may hide check_operands() to reject inputs before computing.
#pragma once

#include <cstdint>

#include "ops/broadcast.h"
#include "ops/op.h"

namespace anvil::ops {

template <typename Derived>
class BinaryElementwise : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const DType a = ctx.input(0).dtype, b = ctx.input(1).dtype;
    if (a != b)
      ctx.fail("input 0 ('", ctx.node().inputs[0]->name, "') has dtype ", to_string(a),
               " but input 1 ('", ctx.node().inputs[1]->name, "') has dtype ", to_string(b),
               "; both must have the same dtype");
    ctx.expect_dtype(0, {DType::kFloat32, DType::kInt64});
    std::optional<ir::Shape> shape = broadcast_shapes(ctx.input(0).shape, ctx.input(1).shape);
    if (!shape)
      ctx.fail("input shapes ", to_string(ctx.input(0).shape), " and ",
               to_string(ctx.input(1).shape), " do not broadcast");
    ctx.set_output(0, a, std::move(*shape));
  }

  void run(RunContext& ctx) const override {
    Derived::check_operands(ctx);
    if (ctx.input(0).dtype() == DType::kInt64)
      compute<std::int64_t>(ctx.input(0), ctx.input(1), ctx.outputs[0]);
    else
      compute<float>(ctx.input(0), ctx.input(1), ctx.outputs[0]);
  }

 protected:
  static void check_operands(const RunContext& /*ctx*/) {}

 private:
  template <typename T>
  static void compute(const Tensor& a, const Tensor& b, Tensor& out) {
    const T* x = a.data<T>();
    const T* y = b.data<T>();
    T* z = out.data<T>();
    for_each_broadcast(
        out.extents(), a.extents(), b.extents(),
        [&](std::int64_t o, std::int64_t i, std::int64_t j) { z[o] = Derived::apply(x[i], y[j]); });
  }
};

// Signed overflow is undefined behaviour in C++; these wrap around the way
// NumPy and ONNX Runtime do, so a hostile model cannot trigger it.
inline std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
inline std::int64_t wrapping_sub(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
inline std::int64_t wrapping_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}

}  // namespace anvil::ops
