// Auxiliary streams on the GPU: the tuned ResNet-18 fixture's plan with its
// downsample shortcuts moved to auxiliary streams (plan::assign_streams) gives
// the same bits as the one-stream plan, with plain launches, CUDA graphs, the
// input-consumed event and the per-layer profiler (which runs it serially).
#include <cstdio>
#include <vector>

#include "anvil/engine.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "plan/plan.h"
#include "plan/streams.h"

namespace anvil {
namespace {

// Counts the layers it is told about: the profiled enqueue ran them all.
struct CountingProfiler final : Profiler {
  int layers = 0;
  void report_layer_time(std::string_view, std::string_view, float) override { ++layers; }
};

std::shared_ptr<const Engine> with_aux_streams(const Engine& serial, int aux_streams) {
  plan::Plan p = serial.plan();
  plan::assign_streams(p, aux_streams);
  return Engine::deserialize(plan::serialize_plan(p), "resnet18-aux.plan");
}

class ContextAuxStreams : public ::testing::TestWithParam<bool> {};

TEST_P(ContextAuxStreams, GiveTheBitsOfOneStream) {
  ANVIL_REQUIRE_GPU();
  const bool fp16 = GetParam();
  const auto serial = test::fixture_engine("resnet18", fp16);
  for (const int aux : {1, 2}) {
    const auto parallel = with_aux_streams(*serial, aux);
    int on_aux = 0;
    for (const plan::LayerDesc& layer : parallel->plan().layers)
      on_aux += layer.stream != 0;
    ASSERT_GT(on_aux, 0) << "no layer was put on an auxiliary stream";
    EXPECT_GE(parallel->context_memory_bytes(), serial->context_memory_bytes());
    std::printf("%d aux stream(s): %d layers on them; context memory %zu -> %zu bytes\n", aux,
                on_aux, serial->context_memory_bytes(), parallel->context_memory_bytes());
    for (const std::int64_t batch : {std::int64_t{1}, test::kTestMaxBatch}) {
      const std::string what = cat(fp16 ? "FP16" : "FP32", ", ", aux, " aux, batch ", batch);
      const test::DeviceIo io(*serial, batch, 77u + static_cast<unsigned>(batch));
      auto reference = serial->create_context();
      test::bind(*serial, *reference, io, batch);
      const std::vector<float> want = test::run_once(*reference, io);

      auto context = parallel->create_context();
      test::bind(*parallel, *context, io, batch);
      test::expect_bit_identical(test::run_once(*context, io), want, what + ", plain");

      cuda::Event consumed(false);
      context->set_input_consumed_event(consumed.get());
      context->set_cuda_graph(true);
      for (int i = 0; i < 3; ++i)  // warm-up, capture, replay
        test::expect_bit_identical(test::run_once(*context, io), want,
                                   cat(what, ", graph enqueue ", i));
      EXPECT_TRUE(context->last_enqueue_used_graph())
          << what << ": " << context->cuda_graph_failure();
      EXPECT_EQ(cudaEventQuery(consumed.get()), cudaSuccess) << what;

      context->set_cuda_graph(false);
      CountingProfiler profiler;
      context->set_profiler(&profiler);
      test::expect_bit_identical(test::run_once(*context, io), want, what + ", profiled");
      EXPECT_EQ(profiler.layers, static_cast<int>(parallel->plan().layers.size())) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Resnet18, ContextAuxStreams, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "fp16" : "fp32"; });

}  // namespace
}  // namespace anvil
