// GlobalMaxPool: the maximum over all spatial positions of each (N, C) plane.
#include <algorithm>
#include <limits>

#include "ops/global_pool.h"

namespace anvil::ops {
namespace {

class GlobalMaxPool final : public GlobalPool {
  float reduce(const float* plane, std::int64_t count) const override {
    float best = -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < count; ++i)
      best = std::max(best, plane[i]);
    return best;
  }
};

ANVIL_REGISTER_OP(GlobalMaxPool, "GlobalMaxPool", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
