// Shared by the GPU context tests (tests/gpu/context_*_test.cc): an engine
// built in-process from a gpu.models fixture model, its one input and output
// bound to device buffers, and output comparison that says where it differs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "anvil/engine.h"
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "core/tensor.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"

namespace anvil::test {

inline constexpr std::int64_t kTestMaxBatch = 8;

// The fixture's model `name` (resnet18, mobilenetv2, resnet50) built and tuned
// for batches 1..kTestMaxBatch, once per process and precision.
inline std::shared_ptr<const Engine> fixture_engine(const std::string& name, bool fp16) {
  static std::map<std::string, std::shared_ptr<const Engine>> built;
  const std::string key = name + (fp16 ? "/fp16" : "/fp32");
  if (auto it = built.find(key); it != built.end()) return it->second;
  const std::filesystem::path model = std::filesystem::path(ANVIL_GPU_MODEL_DIR) / (name + ".onnx");
  if (!std::filesystem::exists(model))
    fail(ErrorKind::kIo, model.string(), " is missing (made by the gpu.models fixture)");
  ir::Graph graph = onnx::import_model(model);
  passes::PassManager().run(graph);
  plan::Plan p =
      builder::lower_graph(graph, {.fp16 = fp16, .tf32 = false, .max_batch = kTestMaxBatch});
  p.anvil_version = "test";
  p.target = builder::current_target();
  p.options = {fp16, false, 256 << 20, {}};
  builder::AutotuneOptions tuning;
  tuning.batch = kTestMaxBatch;
  tuning.iterations = 3;
  builder::autotune(p, tuning);
  auto engine = Engine::deserialize(plan::serialize_plan(p), name + ".plan");
  built[key] = engine;
  return engine;
}

struct IoNames {
  std::string input, output;
};

inline IoNames io_names(const Engine& engine) {
  IoNames names;
  for (const IoTensorInfo& io : engine.io_tensors())
    (io.is_input ? names.input : names.output) = io.name;
  return names;
}

inline std::size_t element_count(const std::vector<std::int64_t>& dims) {
  std::size_t n = 1;
  for (std::int64_t d : dims)
    n *= static_cast<std::size_t>(d);
  return n;
}

inline std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : v)
    x = normal(rng);
  return v;
}

// Normal random images [batch, 3, 224, 224], the same values as random_floats.
inline Tensor random_images(std::int64_t batch, unsigned seed) {
  Tensor t(DType::kFloat32, {batch, 3, 224, 224});
  const std::vector<float> values =
      random_floats(static_cast<std::size_t>(t.element_count()), seed);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// Device input and output of one batch: the input holds `host_input`, the
// output starts as NaN so an unwritten element shows.
struct DeviceIo {
  std::vector<float> host_input;
  std::size_t output_count = 0;
  cuda::DeviceBuffer input, output;

  DeviceIo(const Engine& engine, std::int64_t batch, unsigned seed) {
    std::vector<std::int64_t> in_dims;
    std::vector<std::int64_t> out_dims;
    for (const IoTensorInfo& io : engine.io_tensors())
      (io.is_input ? in_dims : out_dims) = io.dims;
    in_dims[0] = out_dims[0] = batch;
    host_input = random_floats(element_count(in_dims), seed);
    output_count = element_count(out_dims);
    input = cuda::DeviceBuffer(host_input.size() * sizeof(float));
    output = cuda::DeviceBuffer(output_count * sizeof(float));
    cuda::copy_to_device(input.data(), host_input.data(), input.bytes());
    clear_output();
  }
  void clear_output() const { test::poison(output.data(), output.bytes()); }
  std::vector<float> download() const {
    std::vector<float> y(output_count);
    ANVIL_GPU_CHECK(cudaMemcpy(y.data(), output.data(), output.bytes(), cudaMemcpyDeviceToHost));
    return y;
  }
};

// Sets the batch and binds `io` to `context`.
inline void bind(const Engine& engine, ExecutionContext& context, const DeviceIo& io,
                 std::int64_t batch) {
  const IoNames names = io_names(engine);
  std::vector<std::int64_t> dims;
  for (const IoTensorInfo& t : engine.io_tensors())
    if (t.is_input) dims = t.dims;
  dims[0] = batch;
  context.set_input_shape(names.input, dims);
  context.set_tensor_address(names.input, io.input.data());
  context.set_tensor_address(names.output, io.output.data());
}

// One enqueue on a stream of its own, waited for; the output.
inline std::vector<float> run_once(ExecutionContext& context, const DeviceIo& io) {
  io.clear_output();
  cuda::Stream stream;
  context.enqueue(stream.get());
  stream.synchronize();
  return io.download();
}

// Expects `got` to equal `want` bit for bit (the same kernels on the same
// data), printing the first and worst differing elements and the count.
inline void expect_bit_identical(const std::vector<float>& got, const std::vector<float>& want,
                                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  std::size_t differing = 0, first = got.size(), worst = 0, nan = 0;
  double worst_diff = -1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i])) ++nan;
    if (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
    ++differing;
    first = std::min(first, i);
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= worst_diff)) worst_diff = diff, worst = i;
  }
  EXPECT_EQ(nan, 0u) << what << ": " << nan << " output elements are NaN (unwritten?)";
  EXPECT_EQ(differing, 0u) << what << ": " << differing << " of " << got.size()
                           << " elements differ; first at " << first << " (got "
                           << (first < got.size() ? got[first] : 0.0f) << ", want "
                           << (first < got.size() ? want[first] : 0.0f) << "), worst at " << worst
                           << " (got " << got[worst] << ", want " << want[worst] << ")";
}

}  // namespace anvil::test
