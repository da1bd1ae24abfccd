// GlobalAveragePool: the mean over all spatial positions of each (N, C) plane.
#include "ops/global_pool.h"

namespace anvil::ops {
namespace {

class GlobalAveragePool final : public GlobalPool {
  float reduce(const float* plane, std::int64_t count) const override {
    // Summed in double: planes can hold many thousands of positions.
    double sum = 0.0;
    for (std::int64_t i = 0; i < count; ++i)
      sum += plane[i];
    return count > 0 ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
  }
};

ANVIL_REGISTER_OP(GlobalAveragePool, "GlobalAveragePool", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
