// Preformatted inputs (ExecutionContext::input_storage, set_input_preformatted):
// uint8 images written by images_to_engine_storage straight into the engine's
// storage, its reformat_in skipped, give the bits of images_to_nchw + the
// normal path, in FP16 and FP32 plans, plain and with CUDA graphs, across
// batch changes and toggles, with auxiliary streams too; the API's misuse is
// a clear error. Images read by the stem itself (set_input_images) give the
// preformatted path's bits.
#include <cstdio>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "anvil/engine.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/stem_conv_pool.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "plan/plan.h"
#include "plan/streams.h"

namespace anvil {
namespace {

using cuda::kernels::ImageBatchShape;
using cuda::kernels::Normalization;

struct Case {
  const char* model;
  bool fp16;
  int aux_streams;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return cat(info.param.model, info.param.fp16 ? "_fp16" : "_fp32", "_aux", info.param.aux_streams);
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.fp16 ? "_fp16" : "_fp32") << "_aux" << c.aux_streams;
}

std::shared_ptr<const Engine> engine_for(const Case& c) {
  const auto serial = test::fixture_engine(c.model, c.fp16);
  if (c.aux_streams == 0) return serial;
  plan::Plan p = serial->plan();
  plan::assign_streams(p, c.aux_streams);
  return Engine::deserialize(plan::serialize_plan(p), cat(c.model, "-aux.plan"));
}

// `batch` random uint8 images [batch, 224, 224, 3] on the device.
struct DeviceImages {
  std::int64_t batch = 0;
  cuda::DeviceBuffer bytes;

  DeviceImages(std::int64_t n, unsigned seed) : batch(n) {
    std::vector<std::uint8_t> host(static_cast<std::size_t>(n) * 224 * 224 * 3);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::uint8_t& v : host)
      v = static_cast<std::uint8_t>(byte(rng));
    bytes = cuda::DeviceBuffer(host.size());
    cuda::copy_to_device(bytes.data(), host.data(), host.size());
  }
  ImageBatchShape shape() const { return {batch, 224, 224}; }
};

std::vector<std::int64_t> input_dims(const Engine& engine, std::int64_t batch) {
  for (const IoTensorInfo& t : engine.io_tensors())
    if (t.is_input) {
      std::vector<std::int64_t> dims = t.dims;
      dims[0] = batch;
      return dims;
    }
  return {};
}

// The normal path: images_to_nchw into the bound FP32 input, then the engine.
std::vector<float> run_normal(const Engine& engine, ExecutionContext& context,
                              const test::DeviceIo& io, const DeviceImages& images) {
  test::bind(engine, context, io, images.batch);
  io.clear_output();
  cuda::Stream stream;
  cuda::kernels::images_to_nchw(images.bytes.as<std::uint8_t>(), io.input.as<float>(),
                                images.shape(), Normalization{}, stream.get());
  context.enqueue(stream.get());
  stream.synchronize();
  return io.download();
}

// Sets the batch and checks the storage input_storage describes.
InputStorage storage_at(const Engine& engine, ExecutionContext& context, std::int64_t batch,
                        bool fp16) {
  const test::IoNames names = test::io_names(engine);
  context.set_input_shape(names.input, input_dims(engine, batch));
  const InputStorage s = context.input_storage(names.input);
  std::printf(
      "input storage at batch %lld: %s [%lld, %lld, %lld, %lld] %s, c %lld of %lld, %zu "
      "bytes at %p\n",
      static_cast<long long>(batch), s.layout.c_str(),
      static_cast<long long>(s.dims.size() > 0 ? s.dims[0] : -1),
      static_cast<long long>(s.dims.size() > 1 ? s.dims[1] : -1),
      static_cast<long long>(s.dims.size() > 2 ? s.dims[2] : -1),
      static_cast<long long>(s.dims.size() > 3 ? s.dims[3] : -1),
      std::string(to_string(s.dtype)).c_str(), static_cast<long long>(s.channels),
      static_cast<long long>(s.c_pad), s.bytes, s.address);
  EXPECT_EQ(s.layout, "NHWC");
  EXPECT_EQ(s.dims, (std::vector<std::int64_t>{batch, 224, 224, 4}));
  EXPECT_EQ(s.dtype, fp16 ? DType::kFloat16 : DType::kFloat32);
  EXPECT_EQ(s.channels, 3);
  EXPECT_EQ(s.c_pad, 4);
  EXPECT_EQ(s.bytes, static_cast<std::size_t>(batch) * 224 * 224 * 4 * (fp16 ? 2 : 4));
  EXPECT_NE(s.address, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.address) % 256, 0u);
  return s;
}

// images_to_engine_storage into `storage`, then the engine, on one stream.
std::vector<float> run_preformatted(ExecutionContext& context, const InputStorage& storage,
                                    const test::DeviceIo& io, const DeviceImages& images,
                                    const Normalization& norm = {}) {
  io.clear_output();
  cuda::Stream stream;
  cuda::kernels::images_to_engine_storage(images.bytes.as<std::uint8_t>(), storage.address,
                                          storage.dtype == DType::kFloat16
                                              ? cuda::kernels::StorageType::kFloat16
                                              : cuda::kernels::StorageType::kFloat32,
                                          storage.c_pad, images.shape(), norm, stream.get());
  context.enqueue(stream.get());
  stream.synchronize();
  return io.download();
}

// f() throws an anvil::Error of `kind` whose message says `part`.
void expect_error(const std::function<void()>& f, ErrorKind kind, const std::string& part,
                  const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    std::printf("%s: %s\n", what.c_str(), e.what());
    EXPECT_EQ(e.kind(), kind) << what << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << what << ": '" << e.what() << "' does not say '" << part << "'";
  }
}

class ContextPreformattedInput : public ::testing::TestWithParam<Case> {};

TEST_P(ContextPreformattedInput, GivesTheBitsOfTheNormalPath) {
  ANVIL_REQUIRE_GPU();
  const Case c = GetParam();
  const auto engine = engine_for(c);
  const test::IoNames names = test::io_names(*engine);
  const DeviceImages images8(8, 11), images8b(8, 12), images3(3, 13);
  const test::DeviceIo io8(*engine, 8, 1), io3(*engine, 3, 2);

  auto normal = engine->create_context();
  const std::vector<float> want8 = run_normal(*engine, *normal, io8, images8);
  const std::vector<float> want8b = run_normal(*engine, *normal, io8, images8b);
  const std::vector<float> want3 = run_normal(*engine, *normal, io3, images3);

  for (const bool graphs : {false, true}) {
    const std::string what =
        cat(case_name(::testing::TestParamInfo<Case>(c, 0)), graphs ? ", graphs" : ", plain");
    auto context = engine->create_context();
    context->set_cuda_graph(graphs);
    cuda::Event consumed(false);
    context->set_input_consumed_event(consumed.get());
    // The FP32 input holds NaNs: a reformat_in that still ran would make
    // the outputs NaN.
    test::poison(io8.input.data(), io8.input.bytes());
    test::poison(io3.input.data(), io3.input.bytes());
    context->set_input_preformatted(names.input, true);
    EXPECT_TRUE(context->input_preformatted(names.input));
    context->set_tensor_address(names.input, io8.input.data());
    context->set_tensor_address(names.output, io8.output.data());

    InputStorage storage = storage_at(*engine, *context, 8, c.fp16);
    // Warm-up, capture, replay, replay: other images each time, so a graph
    // that baked in stale storage shows.
    for (int i = 0; i < 4; ++i) {
      const bool b = i % 2 == 1;
      test::expect_bit_identical(run_preformatted(*context, storage, io8, b ? images8b : images8),
                                 b ? want8b : want8, cat(what, ", batch 8, enqueue ", i));
      if (graphs) {
        EXPECT_EQ(context->last_enqueue_used_graph(), i >= 1)
            << what << ", enqueue " << i << "; capture failure: '" << context->cuda_graph_failure()
            << "'";
      }
      EXPECT_EQ(cudaEventQuery(consumed.get()), cudaSuccess) << what;
    }

    // A batch change moves the storage.
    context->set_tensor_address(names.input, io3.input.data());
    context->set_tensor_address(names.output, io3.output.data());
    storage = storage_at(*engine, *context, 3, c.fp16);
    for (int i = 0; i < 3; ++i)
      test::expect_bit_identical(run_preformatted(*context, storage, io3, images3), want3,
                                 cat(what, ", batch 3, enqueue ", i));

    // Back to 8, then the normal path on the same context (its own graph),
    // then preformatted again: batch 8's preformatted graph was kept.
    context->set_tensor_address(names.input, io8.input.data());
    context->set_tensor_address(names.output, io8.output.data());
    storage = storage_at(*engine, *context, 8, c.fp16);
    test::expect_bit_identical(run_preformatted(*context, storage, io8, images8b), want8b,
                               what + ", batch 8 again");
    if (graphs) {
      EXPECT_TRUE(context->last_enqueue_used_graph()) << what << ": graph not kept";
    }
    context->set_input_preformatted(names.input, false);
    EXPECT_FALSE(context->input_preformatted(names.input));
    test::expect_bit_identical(run_normal(*engine, *context, io8, images8), want8,
                               what + ", preformatted off");
    context->set_input_preformatted(names.input, true);
    test::poison(io8.input.data(), io8.input.bytes());
    test::expect_bit_identical(run_preformatted(*context, storage, io8, images8), want8,
                               what + ", preformatted on again");
    if (graphs) {
      EXPECT_TRUE(context->last_enqueue_used_graph())
          << what << ": the preformatted graph was dropped by the toggle";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ContextPreformattedInput,
                         ::testing::Values(Case{"resnet18", true, 0}, Case{"resnet18", false, 0},
                                           Case{"mobilenetv2", false, 0},
                                           Case{"resnet18", true, 1}),
                         case_name);

// Images read by the engine's stem (set_input_images) against the same
// images preformatted by images_to_engine_storage: the same output bits,
// plain and with graphs, across pointers, batches, normalizations (a graph
// that baked in the old one would show) and toggles, with auxiliary
// streams too; and the input-consumed event fires.
class ContextImageInput : public ::testing::TestWithParam<Case> {};

TEST_P(ContextImageInput, GivesThePreformattedBits) {
  ANVIL_REQUIRE_GPU();
  const Case c = GetParam();
  const auto engine = engine_for(c);
  const test::IoNames names = test::io_names(*engine);
  auto reference = engine->create_context();
  if (!cuda::kernels::stem_reads_images({1, 224, 224})) {
    EXPECT_FALSE(reference->input_reads_images(names.input));
    GTEST_SKIP() << "the stem reads images on Hopper only (sm_90a code on an sm_90 GPU)";
  }
  ASSERT_TRUE(reference->input_reads_images(names.input))
      << "the FP16 ResNet-18 plan's stem reads its input itself";
  const DeviceImages images8(8, 21), images8b(8, 22), images3(3, 23), images3b(3, 24);
  const test::DeviceIo io8(*engine, 8, 1), io3(*engine, 3, 2);
  Normalization other;
  ImageNormalization other_api;
  for (int ch = 0; ch < 3; ++ch) {
    other.mean[ch] = other_api.mean[static_cast<std::size_t>(ch)] = 0.5f;
    other.std[ch] = other_api.stddev[static_cast<std::size_t>(ch)] = 0.25f;
  }
  reference->set_input_preformatted(names.input, true);
  reference->set_tensor_address(names.output, io8.output.data());
  InputStorage storage = storage_at(*engine, *reference, 8, c.fp16);
  const std::vector<float> want8 = run_preformatted(*reference, storage, io8, images8);
  const std::vector<float> want8b = run_preformatted(*reference, storage, io8, images8b);
  const std::vector<float> want8_other = run_preformatted(*reference, storage, io8, images8, other);
  reference->set_tensor_address(names.output, io3.output.data());
  storage = storage_at(*engine, *reference, 3, c.fp16);
  const std::vector<float> want3 = run_preformatted(*reference, storage, io3, images3);
  const std::vector<float> want3b = run_preformatted(*reference, storage, io3, images3b);

  auto run = [&](ExecutionContext& context, const test::DeviceIo& io) {
    io.clear_output();
    cuda::Stream stream;
    context.enqueue(stream.get());
    stream.synchronize();
    return io.download();
  };
  for (const bool graphs : {false, true}) {
    const std::string what =
        cat(case_name(::testing::TestParamInfo<Case>(c, 0)), graphs ? ", graphs" : ", plain");
    auto context = engine->create_context();
    context->set_cuda_graph(graphs);
    cuda::Event consumed(false);
    context->set_input_consumed_event(consumed.get());
    // The bound FP32 input holds other images than those given: a stem that
    // read it would give their outputs.
    cuda::Stream stream;
    cuda::kernels::images_to_nchw(images8b.bytes.as<std::uint8_t>(), io8.input.as<float>(),
                                  images8b.shape(), Normalization{}, stream.get());
    stream.synchronize();
    context->set_tensor_address(names.input, io8.input.data());
    context->set_tensor_address(names.output, io8.output.data());
    context->set_input_shape(names.input, input_dims(*engine, 8));
    // Two image buffers in turn: a launch that kept the old pointer shows.
    // (Under graphs each new pointer makes the enqueue a warm-up again.)
    for (int i = 0; i < 4; ++i) {
      const bool b = i % 2 == 1;
      context->set_input_images(names.input, (b ? images8b : images8).bytes.data());
      test::expect_bit_identical(run(*context, io8), b ? want8b : want8,
                                 cat(what, ", batch 8, enqueue ", i));
      EXPECT_EQ(cudaEventQuery(consumed.get()), cudaSuccess) << what;
    }
    // Another normalization at the same pointer (under graphs: warm-up,
    // capture, replay), then back: a graph that kept the other one would
    // give its outputs again.
    for (int i = 0; i < 3; ++i) {
      context->set_input_images(names.input, images8.bytes.data(), other_api);
      test::expect_bit_identical(run(*context, io8), want8_other,
                                 cat(what, ", other normalization, enqueue ", i));
      if (graphs) {
        EXPECT_EQ(context->last_enqueue_used_graph(), i >= 1)
            << what << ", other normalization, enqueue " << i << "; capture failure: '"
            << context->cuda_graph_failure() << "'";
      }
    }
    context->set_input_images(names.input, images8.bytes.data());
    test::expect_bit_identical(run(*context, io8), want8, what + ", ImageNet's again");

    // Another batch, then images off (the bound FP32 input, holding other
    // images, is read again: a NaN there would not show, as the stem's max
    // pool drops NaN), then preformatted, then images again.
    context->set_tensor_address(names.output, io3.output.data());
    context->set_input_shape(names.input, input_dims(*engine, 3));
    context->set_input_images(names.input, images3.bytes.data());
    for (int i = 0; i < 3; ++i)
      test::expect_bit_identical(run(*context, io3), want3, cat(what, ", batch 3, enqueue ", i));
    context->set_input_images(names.input, nullptr);
    EXPECT_FALSE(context->input_preformatted(names.input));
    test::expect_bit_identical(run_normal(*engine, *context, io3, images3b), want3b,
                               what + ", images off");
    context->set_input_preformatted(names.input, true);
    storage = storage_at(*engine, *context, 3, c.fp16);
    test::expect_bit_identical(run_preformatted(*context, storage, io3, images3), want3,
                               what + ", preformatted after images");
    context->set_input_preformatted(names.input, false);
    context->set_input_images(names.input, images3.bytes.data());
    test::expect_bit_identical(run(*context, io3), want3, what + ", images again");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ContextImageInput,
                         ::testing::Values(Case{"resnet18", true, 0}, Case{"resnet18", true, 1}),
                         case_name);

TEST(ContextImageInputErrors, MisuseIsAClearError) {
  ANVIL_REQUIRE_GPU();
  const DeviceImages images(2, 31);
  // An FP32 plan's input is read by reformat_in, which takes no images.
  const auto fp32 = test::fixture_engine("resnet18", false);
  auto plain = fp32->create_context();
  const std::string fp32_input = test::io_names(*fp32).input;
  EXPECT_FALSE(plain->input_reads_images(fp32_input));
  expect_error([&] { plain->set_input_images(fp32_input, images.bytes.data()); },
               ErrorKind::kUnsupported, "images_to_engine_storage", "images on an FP32 plan");

  const auto engine = test::fixture_engine("resnet18", true);
  const test::IoNames names = test::io_names(*engine);
  auto context = engine->create_context();
  expect_error([&] { context->set_input_images("no_such_input", images.bytes.data()); },
               ErrorKind::kInvalidArgument, "no_such_input", "an unknown input");
  expect_error([&] { context->input_reads_images("no_such_input"); }, ErrorKind::kInvalidArgument,
               "no_such_input", "asking of an unknown input");
  if (!context->input_reads_images(names.input)) {
    expect_error([&] { context->set_input_images(names.input, images.bytes.data()); },
                 ErrorKind::kUnsupported, "Hopper", "images where the stem cannot read them");
    GTEST_SKIP() << "the rest needs a stem that reads images (Hopper)";
  }
  expect_error([&] { context->set_input_images(names.input, images.bytes.as<std::uint8_t>() + 4); },
               ErrorKind::kInvalidArgument, "16-byte", "misaligned pixels");
  ImageNormalization bad;
  bad.stddev[1] = 0.0f;
  expect_error([&] { context->set_input_images(names.input, images.bytes.data(), bad); },
               ErrorKind::kInvalidArgument, "channel 1", "a zero stddev");
  bad = {};
  bad.mean[2] = NAN;
  expect_error([&] { context->set_input_images(names.input, images.bytes.data(), bad); },
               ErrorKind::kInvalidArgument, "channel 2", "a NaN mean");
  context->set_input_preformatted(names.input, true);
  expect_error([&] { context->set_input_images(names.input, images.bytes.data()); },
               ErrorKind::kInvalidArgument, "set_input_preformatted",
               "images on a preformatted input");
  context->set_input_preformatted(names.input, false);
  context->set_input_images(names.input, images.bytes.data());
  expect_error([&] { context->set_input_preformatted(names.input, true); },
               ErrorKind::kInvalidArgument, "set_input_images", "preformatting an image input");
  // The images stand for the input's address: enqueue needs only the output's.
  const test::DeviceIo io(*engine, 2, 5);
  context->set_input_shape(names.input, input_dims(*engine, 2));
  context->set_tensor_address(names.output, io.output.data());
  cuda::Stream stream;
  context->enqueue(stream.get());
  stream.synchronize();
  context->set_input_images(names.input, nullptr);
  expect_error([&] { context->enqueue(nullptr); }, ErrorKind::kInvalidArgument,
               "'" + names.input + "'", "enqueue after turning images off");
}

TEST(ContextPreformattedInputErrors, MisuseIsAClearError) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", true);
  const test::IoNames names = test::io_names(*engine);
  auto context = engine->create_context();
  expect_error([&] { context->input_storage(names.input); }, ErrorKind::kInvalidArgument,
               "set_input_shape", "before set_input_shape");
  expect_error([&] { context->input_storage("no_such_input"); }, ErrorKind::kInvalidArgument,
               "no_such_input", "an unknown input");
  expect_error([&] { context->input_storage(names.output); }, ErrorKind::kInvalidArgument,
               names.output, "an output");
  expect_error([&] { context->set_input_preformatted("no_such_input", true); },
               ErrorKind::kInvalidArgument, "no_such_input", "preformatting an unknown input");

  auto borrowing = engine->create_context_without_memory();
  borrowing->set_input_shape(names.input, input_dims(*engine, 2));
  expect_error([&] { borrowing->input_storage(names.input); }, ErrorKind::kInvalidArgument,
               "set_device_memory", "without device memory");

  // Without the flag the input's address is required, and named; with it,
  // not: the storage is the input.
  const test::DeviceIo io(*engine, 2, 5);
  context->set_input_shape(names.input, input_dims(*engine, 2));
  context->set_tensor_address(names.output, io.output.data());
  expect_error([&] { context->enqueue(nullptr); }, ErrorKind::kInvalidArgument,
               "'" + names.input + "'", "enqueue without the input's address");
  context->set_input_preformatted(names.input, true);
  cuda::Stream stream;
  context->enqueue(stream.get());
  stream.synchronize();
  context->set_input_preformatted(names.input, false);
  expect_error([&] { context->enqueue(nullptr); }, ErrorKind::kInvalidArgument,
               "'" + names.input + "'", "enqueue after turning it off");
}

}  // namespace
}  // namespace anvil
