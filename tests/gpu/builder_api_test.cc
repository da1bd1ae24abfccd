// The public Builder on the GPU: the generated MobileNetV2 (the gpu.models
// fixture) built with the profile min 1, opt 4, max 8, then run through
// Engine and ExecutionContext at batch 1 (against the CPU reference) and 8
// (whose first image must give batch 1's logits); a batch outside the profile
// is refused.
#include <cmath>
#include <random>

#include "anvil/builder.h"
#include "anvil/engine.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "onnx/importer.h"
#include "reference/reference_runtime.h"

namespace anvil {
namespace {

using Dims = std::vector<std::int64_t>;

using test::random_images;

std::vector<float> run(ExecutionContext& context, const Tensor& x) {
  context.set_input_shape("input", x.extents());
  std::int64_t out_count = 1;
  for (std::int64_t d : context.tensor_shape("output"))
    out_count *= d;
  cuda::DeviceBuffer d_in(x.byte_size()), d_out(static_cast<std::size_t>(out_count) * 4);
  cuda::copy_to_device(d_in.data(), x.bytes(), x.byte_size());
  test::poison(d_out.data(), d_out.bytes());
  context.set_tensor_address("input", d_in.data());
  context.set_tensor_address("output", d_out.data());
  cuda::Stream stream;
  context.enqueue(stream.get());
  stream.synchronize();
  std::vector<float> y(static_cast<std::size_t>(out_count));
  ANVIL_GPU_CHECK(cudaMemcpy(y.data(), d_out.data(), d_out.bytes(), cudaMemcpyDeviceToHost));
  return y;
}

// max |got - want| / max |want| over the first want.size() values, printing
// the worst element.
double relative_error(const std::vector<float>& got, const float* want, std::size_t count,
                      const char* what) {
  double max_err = 0, max_ref = 0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(got[i]) || err > max_err) {
      max_err = std::isnan(got[i]) ? INFINITY : err;
      worst = i;
    }
    max_ref = std::max(max_ref, static_cast<double>(std::abs(want[i])));
  }
  std::printf("%s: max abs error %.3g at %zu (got %g, want %g), relative %.3g\n", what, max_err,
              worst, static_cast<double>(got[worst]), static_cast<double>(want[worst]),
              max_err / max_ref);
  return max_err / max_ref;
}

TEST(BuilderApi, BuildsAProfileAndRunsItsBatchRange) {
  ANVIL_REQUIRE_GPU();
  const std::filesystem::path model =
      std::filesystem::path(ANVIL_GPU_MODEL_DIR) / "mobilenetv2.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " (made by the gpu.models fixture)";

  BuilderConfig config;
  config.tf32 = false;
  config.autotune_iterations = 2;
  config.profile.set_dimensions("input", Dims{1, 3, 224, 224}, Dims{4, 3, 224, 224},
                                Dims{8, 3, 224, 224});
  int last_done = -1, last_total = -2;
  config.progress = [&](int done, int total) {
    last_done = done;
    last_total = total;
  };
  BuildReport report;
  const std::vector<std::byte> bytes = Builder().build_serialized(model, config, &report);
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(report.min_batch, 1);
  EXPECT_EQ(report.opt_batch, 4);
  EXPECT_EQ(report.max_batch, 8);
  EXPECT_FALSE(report.tactics.empty());
  EXPECT_EQ(last_done, last_total) << "progress should end at every layer tuned";
  EXPECT_GT(report.weight_bytes, 0u);
  EXPECT_GT(report.arena_bytes, 0u);
  EXPECT_FALSE(report.passes.empty());
  std::printf("built in %.1f s on %s: %zu layers, %zu tuned\n", report.seconds,
              report.gpu_name.c_str(), report.layer_kinds.size(), report.tactics.size());

  auto engine = Engine::deserialize(bytes, "mobilenetv2.plan");
  EXPECT_EQ(engine->min_batch(), 1);
  EXPECT_EQ(engine->max_batch(), 8);
  auto context = engine->create_context();

  const Tensor x8 = random_images(8, 8);
  Tensor x1(DType::kFloat32, {1, 3, 224, 224});
  std::copy_n(x8.data<float>(), x1.element_count(), x1.data<float>());
  const ir::Graph graph = onnx::import_model(model);
  const Tensor want1 = reference::ReferenceRuntime(graph).run({{"input", x1}})[0];

  const std::vector<float> got1 = run(*context, x1);
  ASSERT_EQ(static_cast<std::int64_t>(got1.size()), want1.element_count());
  EXPECT_LE(relative_error(got1, want1.data<float>(), got1.size(), "batch 1 vs CPU reference"),
            1e-4);
  const std::vector<float> got8 = run(*context, x8);
  ASSERT_EQ(got8.size(), 8 * got1.size());
  EXPECT_LE(relative_error(got8, got1.data(), got1.size(), "batch 8 image 0 vs batch 1"), 1e-4);
  for (std::size_t i = 0; i < got8.size(); ++i)
    ASSERT_TRUE(std::isfinite(got8[i])) << "batch 8 output element " << i << " is " << got8[i];

  try {
    context->set_input_shape("input", Dims{9, 3, 224, 224});
    ADD_FAILURE() << "batch 9 is outside the profile 1..8 but was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("input"), std::string::npos) << e.what();
  }
}

// Two profiles (batches 1-4 tuned at 2, 5-8 tuned at 8) in one plan: each
// runs its range against the CPU reference; the context switches between
// them, also with CUDA graphs; a batch outside the selected profile names both.
TEST(BuilderApi, TwoProfilesInOnePlan) {
  ANVIL_REQUIRE_GPU();
  const std::filesystem::path model =
      std::filesystem::path(ANVIL_GPU_MODEL_DIR) / "mobilenetv2.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " (made by the gpu.models fixture)";
  BuilderConfig config;
  config.tf32 = false;
  config.autotune_iterations = 2;
  config.profile.set_batch_range(1, 2, 4);
  config.additional_profiles.resize(1);
  config.additional_profiles[0].set_batch_range(5, 8, 8);
  BuildReport report;
  auto engine =
      Engine::deserialize(Builder().build_serialized(model, config, &report), "two-profile.plan");
  ASSERT_EQ(report.profiles.size(), 2u);
  std::size_t per_profile[2] = {0, 0};
  for (const LayerTacticReport& t : report.tactics)
    ++per_profile[t.profile];
  EXPECT_EQ(per_profile[0], per_profile[1]) << "every layer is tuned once per profile";
  ASSERT_EQ(engine->profile_count(), 2);
  EXPECT_EQ(engine->min_batch(), 1);
  EXPECT_EQ(engine->max_batch(), 8);
  EXPECT_EQ(engine->best_profile(3), 0);
  EXPECT_EQ(engine->best_profile(6), 1);
  EXPECT_EQ(engine->best_profile(9), -1);

  const ir::Graph graph = onnx::import_model(model);
  const Tensor x8 = random_images(8, 21);
  const Tensor want8 = reference::ReferenceRuntime(graph).run({{"input", x8}})[0];
  const std::size_t per_image = static_cast<std::size_t>(want8.element_count() / 8);
  Tensor x3(DType::kFloat32, {3, 3, 224, 224});
  std::copy_n(x8.data<float>(), x3.element_count(), x3.data<float>());

  auto context = engine->create_context();
  EXPECT_EQ(context->optimization_profile(), 0);
  try {
    context->set_input_shape("input", Dims{8, 3, 224, 224});
    ADD_FAILURE() << "batch 8 is outside profile 0 (1..4) but was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("profile 0: batch 1..4"), std::string::npos) << m;
    EXPECT_NE(m.find("profile 1: batch 5..8"), std::string::npos) << m;
    EXPECT_NE(m.find("select profile 1"), std::string::npos) << m;
  }
  for (const bool graphs : {false, true}) {
    SCOPED_TRACE(graphs ? "CUDA graphs" : "plain launches");
    context->set_cuda_graph(graphs);
    // run() binds fresh buffers each call, so with graphs on every enqueue
    // warms up and captures anew: this checks profile switches give the
    // right results, while context_cuda_graph_test.cc checks replays.
    for (int round = 0; round < 3; ++round) {
      context->set_optimization_profile(0);
      const std::vector<float> got3 = run(*context, x3);
      EXPECT_LE(relative_error(got3, want8.data<float>(), 3 * per_image, "profile 0 batch 3"),
                1e-4);
      context->set_optimization_profile(1);
      EXPECT_EQ(context->optimization_profile(), 1);
      const std::vector<float> got8 = run(*context, x8);
      EXPECT_LE(relative_error(got8, want8.data<float>(), 8 * per_image, "profile 1 batch 8"),
                1e-4);
    }
  }
  EXPECT_THROW(context->set_optimization_profile(2), Error);
}

}  // namespace
}  // namespace anvil
