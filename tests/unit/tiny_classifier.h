// The pipeline tests' network: small enough for the CPU runtime to run
// thousands of requests in a test, shaped like a classifier.
#pragma once

#include <cstdint>
#include <memory>

#include "pass_test_util.h"

namespace anvil::test {

inline constexpr std::int64_t kTinyClasses = 10;
inline constexpr std::int64_t kTinyImage = 3 * 4 * 4;  // floats per [3,4,4] image

// [N,3,4,4] -> Conv 3->8 -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> [N,10].
inline std::shared_ptr<const ir::Graph> tiny_classifier() {
  passes::testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(4),
                                         ir::Dim::known(4)}));
  ir::Value* y = b.node("Relu", {b.conv(x, 3, 8, 3, /*bias=*/true)});
  y = b.node("Flatten", {b.node("GlobalAveragePool", {y})});
  y = b.node("Gemm", {y, b.weight("fc_w", {8, kTinyClasses}), b.weight("fc_b", {kTinyClasses})});
  b.output(y);
  return std::make_shared<const ir::Graph>(b.finish());
}

}  // namespace anvil::test
