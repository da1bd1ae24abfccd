// ExecutionContext::set_profiler: one report per plan layer per enqueue, in
// execution order, with the plan's names and kinds and positive times; the
// outputs do not change with profiling.
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "gpu_test.h"
#include "plan/plan.h"

namespace anvil {
namespace {

using test::DeviceIo;

struct Report {
  std::string layer, kind;
  float ms;
};

class RecordingProfiler final : public Profiler {
 public:
  void report_layer_time(std::string_view layer, std::string_view kind, float ms) override {
    reports.push_back({std::string(layer), std::string(kind), ms});
  }
  std::vector<Report> reports;
};

TEST(ContextProfiler, ReportsEveryLayerOfEveryEnqueue) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  const std::vector<plan::LayerDesc>& layers = engine->plan().layers;
  auto context = engine->create_context();
  constexpr std::int64_t kBatch = 4;
  const DeviceIo io(*engine, kBatch, 21);
  test::bind(*engine, *context, io, kBatch);
  const std::vector<float> plain = test::run_once(*context, io);

  RecordingProfiler profiler;
  context->set_profiler(&profiler);
  constexpr int kEnqueues = 3;
  std::vector<float> profiled;
  for (int i = 0; i < kEnqueues; ++i)
    profiled = test::run_once(*context, io);
  ASSERT_EQ(profiler.reports.size(), layers.size() * kEnqueues)
      << "want one report per layer (" << layers.size() << ") per enqueue (" << kEnqueues << ")";
  for (std::size_t r = 0; r < profiler.reports.size(); ++r) {
    const Report& got = profiler.reports[r];
    const plan::LayerDesc& want = layers[r % layers.size()];
    EXPECT_EQ(got.layer, want.name) << "report " << r;
    EXPECT_EQ(got.kind, want.kind) << "report " << r << " (" << want.name << ")";
    EXPECT_GT(got.ms, 0.0f) << "report " << r << " (" << want.name << ", " << want.kind << ")";
  }
  test::expect_bit_identical(profiled, plain, "profiled vs plain enqueue");

  context->set_profiler(nullptr);
  test::expect_bit_identical(test::run_once(*context, io), plain, "after profiling off");
  EXPECT_EQ(profiler.reports.size(), layers.size() * kEnqueues)
      << "reports arrived with profiling off";
}

}  // namespace
}  // namespace anvil
