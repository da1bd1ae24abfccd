// Spatial optimization profiles on the GPU: one plan, built for a range of
// batch, height and width (tuned at the opt shape), run at shapes across the
// range (odd sizes, min, max, back to opt) against the CPU reference runtime
// on the model fixed at each shape: FP32 without TF32 to 1e-4 of the output
// range, FP16 to 2e-2. A small conv + pool + residual + global pool + gemm
// model through the public Builder, and the generated ResNet-18 lowered in
// process with a 160..256 profile.
#include <cmath>
#include <cstdio>
#include <random>

#include "../fuzz/onnx_model_builder.h"
#include "anvil/builder.h"
#include "anvil/engine.h"
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "builder/spatial_dims.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "reference/reference_runtime.h"

namespace anvil {
namespace {

using Dims = std::vector<std::int64_t>;
using testing::add_int_attribute;
using testing::add_ints_attribute;

std::vector<float> seeded(std::size_t n, unsigned seed, float scale) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (float& x : v)
    x = normal(rng);
  return v;
}

// x[N,3,H,W] -> Conv 3->8 3x3/2 pad 1 + ReLU -> MaxPool 3/2 pad 1 ceil ->
// [Conv 8->8 3x3 + ReLU -> Conv 8->8 3x3] + shortcut -> ReLU -> GAP ->
// Flatten -> Gemm 8->10: H and W symbolic.
std::string small_model() {
  testing::ModelBuilder b;
  b.input("x", {std::string("N"), std::int64_t{3}, std::string("H"), std::string("W")}).output("y");
  auto conv = [&b](const std::string& name, const std::string& in, const std::string& out,
                   std::int64_t c, std::int64_t k, std::int64_t stride, unsigned seed) {
    b.raw_f32(name + ".w", {k, c, 3, 3}, seeded(static_cast<std::size_t>(k * c * 9), seed, 0.3f));
    b.raw_f32(name + ".b", {k}, seeded(static_cast<std::size_t>(k), seed + 100, 0.1f));
    auto& node = b.node("Conv", {in, name + ".w", name + ".b"}, {out}, name);
    add_ints_attribute(node, "kernel_shape", {3, 3});
    add_ints_attribute(node, "pads", {1, 1, 1, 1});
    add_ints_attribute(node, "strides", {stride, stride});
  };
  conv("stem", "x", "stem_out", 3, 8, 2, 1);
  b.node("Relu", {"stem_out"}, {"stem_relu"}, "stem_relu");
  auto& pool = b.node("MaxPool", {"stem_relu"}, {"pool"}, "pool");
  add_ints_attribute(pool, "kernel_shape", {3, 3});
  add_ints_attribute(pool, "strides", {2, 2});
  add_ints_attribute(pool, "pads", {1, 1, 1, 1});
  add_int_attribute(pool, "ceil_mode", 1);
  conv("block1", "pool", "b1", 8, 8, 1, 2);
  b.node("Relu", {"b1"}, {"b1_relu"}, "b1_relu");
  conv("block2", "b1_relu", "b2", 8, 8, 1, 3);
  b.node("Add", {"b2", "pool"}, {"sum"}, "add");
  b.node("Relu", {"sum"}, {"sum_relu"}, "sum_relu");
  b.node("GlobalAveragePool", {"sum_relu"}, {"gap"}, "gap");
  b.node("Flatten", {"gap"}, {"flat"}, "flatten");
  b.raw_f32("fc.w", {10, 8}, seeded(80, 4, 0.5f));
  b.raw_f32("fc.b", {10}, seeded(10, 5, 0.1f));
  add_int_attribute(b.node("Gemm", {"flat", "fc.w", "fc.b"}, {"y"}, "fc"), "transB", 1);
  return b.bytes();
}

// The engine's output for `x` (NCHW) on `context`, and the output shape it reported.
std::vector<float> run_engine(const Engine& engine, ExecutionContext& context, const Tensor& x,
                              Dims& out_shape) {
  const test::IoNames names = test::io_names(engine);
  context.set_input_shape(names.input, x.extents());
  out_shape = context.tensor_shape(names.output);
  const std::size_t out_count = test::element_count(out_shape);
  cuda::DeviceBuffer d_in(x.byte_size()), d_out(out_count * sizeof(float));
  cuda::copy_to_device(d_in.data(), x.bytes(), x.byte_size());
  test::poison(d_out.data(), d_out.bytes());
  context.set_tensor_address(names.input, d_in.data());
  context.set_tensor_address(names.output, d_out.data());
  cuda::Stream stream;
  context.enqueue(stream.get());
  stream.synchronize();
  std::vector<float> y(out_count);
  ANVIL_GPU_CHECK(cudaMemcpy(y.data(), d_out.data(), d_out.bytes(), cudaMemcpyDeviceToHost));
  return y;
}

// The reference runtime's output for `x` on `model` fixed at x's shape.
Tensor reference_output(const std::filesystem::path& model, const std::string& input,
                        const Tensor& x) {
  ir::Graph graph = onnx::import_model(model);
  builder::fix_input_dims(graph, {{input, {x.extents().begin(), x.extents().end()}}});
  const reference::ReferenceRuntime reference(graph);
  return reference.run({{input, x}})[0];
}

// Runs `engine` at `dims` and compares with the reference, printing the
// shape, the worst element (got vs want) and the error relative to the range.
void expect_matches_reference(const Engine& engine, ExecutionContext& context,
                              const std::filesystem::path& model, const Dims& dims,
                              double tolerance, const std::string& what) {
  SCOPED_TRACE(what);
  Tensor x(DType::kFloat32, Extents(dims.begin(), dims.end()));
  const std::vector<float> values = test::random_floats(
      static_cast<std::size_t>(x.element_count()), static_cast<unsigned>(dims[2] * 1000 + dims[3]));
  std::copy(values.begin(), values.end(), x.data<float>());
  const test::IoNames names = test::io_names(engine);
  const Tensor want = reference_output(model, names.input, x);
  Dims out_shape;
  const std::vector<float> got = run_engine(engine, context, x, out_shape);
  const Dims want_shape(want.extents().begin(), want.extents().end());
  ASSERT_EQ(out_shape, want_shape) << "tensor_shape of the output";
  ASSERT_EQ(static_cast<std::int64_t>(got.size()), want.element_count());
  const float* w = want.data<float>();
  double worst = -1, range = 0;
  std::size_t at = 0, nan = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i])) ++nan;
    const double diff = std::abs(static_cast<double>(got[i]) - w[i]);
    if (!(diff <= worst)) worst = diff, at = i;
    range = std::max(range, static_cast<double>(std::abs(w[i])));
  }
  const double rel = worst / std::max(range, 1e-30);
  std::printf(
      "%s input %s: worst element %zu got %.6g want %.6g, max abs error %.3g, "
      "relative to the output range %.3g (tolerance %.1g)\n",
      what.c_str(), ::testing::PrintToString(dims).c_str(), at, got[at], w[at], worst, rel,
      tolerance);
  EXPECT_EQ(nan, 0u) << nan << " output elements are NaN (unwritten?)";
  EXPECT_LE(rel, tolerance) << "input " << ::testing::PrintToString(dims);
}

class SpatialProfile : public ::testing::TestWithParam<bool> {};

TEST_P(SpatialProfile, SmallModelMatchesTheReferenceAcrossTheRange) {
  ANVIL_REQUIRE_GPU();
  const bool fp16 = GetParam();
  const testing::ScratchDir dir("anvil_engine_spatial_test");
  const std::filesystem::path model = dir.write("spatial.onnx", small_model());
  BuilderConfig config;
  config.fp16 = fp16;
  config.tf32 = false;
  config.autotune_iterations = 3;
  config.profile.set_dimensions("x", Dims{1, 3, 64, 64}, Dims{2, 3, 96, 96}, Dims{4, 3, 128, 128});
  const std::vector<std::byte> bytes = Builder().build_serialized(model, config);
  auto engine = Engine::deserialize(bytes, "spatial.plan");

  for (const IoTensorInfo& io : engine->io_tensors())
    std::printf("%s %s dims %s\n", io.is_input ? "input" : "output", io.name.c_str(),
                ::testing::PrintToString(io.dims).c_str());
  const test::IoNames names = test::io_names(*engine);
  for (const IoTensorInfo& io : engine->io_tensors())
    EXPECT_EQ(io.dims, io.is_input ? (Dims{-1, 3, -1, -1}) : (Dims{-1, 10})) << io.name;

  auto context = engine->create_context();
  const double tolerance = fp16 ? 2e-2 : 1e-4;
  const std::string precision = fp16 ? "FP16" : "FP32";
  for (const Dims& dims : {Dims{2, 3, 96, 96}, Dims{1, 3, 65, 77}, Dims{1, 3, 64, 64},
                           Dims{4, 3, 128, 128}, Dims{3, 3, 127, 101}, Dims{2, 3, 96, 96}})
    expect_matches_reference(*engine, *context, model, dims, tolerance, precision);

  // Outside the profile: a clear error naming the ranges.
  for (const Dims& dims : {Dims{1, 3, 63, 64}, Dims{5, 3, 64, 64}, Dims{1, 3, 64, 129}}) {
    try {
      context->set_input_shape(names.input, dims);
      ADD_FAILURE() << "no error for " << ::testing::PrintToString(dims);
    } catch (const Error& e) {
      std::printf("outside the profile: %s\n", e.what());
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("[64..128]"), std::string::npos) << e.what();
    }
  }

  // A borrowed block of exactly context_memory_bytes() runs the max shape.
  auto borrowing = engine->create_context_without_memory();
  cuda::DeviceBuffer memory(engine->context_memory_bytes());
  borrowing->set_device_memory(memory.data(), memory.bytes());
  std::printf("context memory %zu bytes\n", engine->context_memory_bytes());
  expect_matches_reference(*engine, *borrowing, model, Dims{4, 3, 128, 128}, tolerance,
                           precision + " borrowed memory");
  expect_matches_reference(*engine, *borrowing, model, Dims{1, 3, 99, 64}, tolerance,
                           precision + " borrowed memory");
}

std::string precision_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "fp16" : "fp32";
}

INSTANTIATE_TEST_SUITE_P(Precisions, SpatialProfile, ::testing::Values(false, true),
                         precision_name);

// ResNet-18 (the gpu.models fixture, exported at 224x224) lowered at 224,
// its profile widened to 160..256, tuned at 2x3x224x224.
TEST(SpatialProfileResNet18, MatchesTheReferenceAt160To256) {
  ANVIL_REQUIRE_GPU();
  const std::filesystem::path model = std::filesystem::path(ANVIL_GPU_MODEL_DIR) / "resnet18.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " (made by the gpu.models fixture)";
  ir::Graph graph = onnx::import_model(model);
  passes::PassManager().run(graph);
  plan::Plan p = builder::lower_graph(graph, {.fp16 = true, .tf32 = false, .max_batch = 2});
  plan::ProfileDim& range = p.profiles.at(0).inputs.at("input");
  range = {{1, 3, 160, 160}, {2, 3, 224, 224}, {2, 3, 256, 256}};
  p.anvil_version = "test";
  p.target = builder::current_target();
  p.options = {true, false, 256 << 20, {}};
  builder::AutotuneOptions tuning;
  tuning.batch = 2;
  tuning.iterations = 3;
  builder::autotune(p, tuning);
  auto engine = Engine::deserialize(plan::serialize_plan(p), "resnet18_spatial.plan");
  auto context = engine->create_context();
  for (const Dims& dims :
       {Dims{2, 3, 224, 224}, Dims{1, 3, 160, 160}, Dims{1, 3, 256, 256}, Dims{1, 3, 225, 161}})
    expect_matches_reference(*engine, *context, model, dims, 2e-2, "ResNet-18 FP16");
}

}  // namespace
}  // namespace anvil
