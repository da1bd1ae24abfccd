// kUint8Nchw input on the CPU executor: planar bytes give exactly what the
// same images packed (kUint8Nhwc) give, and what the FP32 batch normalized by
// hand gives; owned and borrowed planes agree; a batch whose pixels sit in
// another format's vector, or whose size is off, is refused at submit; a model
// whose input is not 3 x H x W refuses uint8 planes as it does packed ones.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "anvil/pipeline.h"
#include "pass_test_util.h"
#include "pipeline/cpu_executor.h"
#include "pipeline/host_postprocess.h"
#include "reference/reference_runtime.h"

namespace anvil {
namespace {

using passes::testing::GraphBuilder;

constexpr std::int64_t kH = 4, kW = 5, kPlane = kH * kW, kImage = 3 * kPlane, kClasses = 6;

// [N,3,4,5] -> Conv 3->8 -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> [N,6].
// Non-square, so a transposed plane (h and w swapped) would show.
std::shared_ptr<const ir::Graph> classifier() {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(kH),
                                         ir::Dim::known(kW)}));
  ir::Value* y = b.node("Relu", {b.conv(x, 3, 8, 3, /*bias=*/true)});
  y = b.node("Flatten", {b.node("GlobalAveragePool", {y})});
  y = b.node("Gemm", {y, b.weight("fc_w", {8, kClasses}), b.weight("fc_b", {kClasses})});
  b.output(y);
  return std::make_shared<const ir::Graph>(b.finish());
}

PipelineOptions full_output() {
  PipelineOptions o;
  o.workers = 1;
  o.queue_depth = 2;
  o.output = OutputMode::kFullOutput;
  // Not ImageNet's: a layout bug that swaps channels changes the output.
  const float mean[3] = {0.1f, 0.5f, 0.9f}, stddev[3] = {0.2f, 0.3f, 0.4f};
  for (int c = 0; c < 3; ++c)
    o.mean[c] = mean[c], o.stddev[c] = stddev[c];
  return o;
}

// n images as packed HWC bytes, every byte value present, no plane constant.
std::vector<std::uint8_t> packed_images(std::int64_t n) {
  std::vector<std::uint8_t> v(static_cast<std::size_t>(n * kImage));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::uint8_t>((i * 151 + i / 7) % 256);
  return v;
}

// The same images as planes: [n][c][p] = packed [n][p][c].
std::vector<std::uint8_t> to_planes(const std::vector<std::uint8_t>& packed, std::int64_t n) {
  std::vector<std::uint8_t> v(packed.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t p = 0; p < kPlane; ++p)
      for (std::int64_t c = 0; c < 3; ++c)
        v[static_cast<std::size_t>(i * kImage + c * kPlane + p)] =
            packed[static_cast<std::size_t>((i * kPlane + p) * 3 + c)];
  return v;
}

std::vector<float> run_reference(const ir::Graph& graph, std::int64_t n,
                                 const std::vector<float>& nchw) {
  const Tensor in = Tensor::from<float>({n, 3, kH, kW}, std::span<const float>(nchw));
  std::vector<Tensor> out = reference::ReferenceRuntime(graph).run({{"x", in}});
  return {out[0].values<float>().begin(), out[0].values<float>().end()};
}

TEST(PipelineUint8Nchw, PlanesGiveWhatPackedImagesAndHandNormalizedFloatsGive) {
  const auto graph = classifier();
  const PipelineOptions o = full_output();
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), o);
  constexpr std::int64_t kN = 3;
  const std::vector<std::uint8_t> packed = packed_images(kN);

  Batch nhwc;
  nhwc.batch_size = kN;
  nhwc.format = InputFormat::kUint8Nhwc;
  nhwc.nhwc = packed;
  Batch nchw;
  nchw.batch_size = kN;
  nchw.format = InputFormat::kUint8Nchw;
  nchw.nchw_u8 = to_planes(packed, kN);
  ASSERT_NE(nchw.nchw_u8, packed) << "the test's planes must differ from the packed bytes";

  std::vector<float> floats(static_cast<std::size_t>(kN * kImage));
  for (std::int64_t i = 0; i < kN; ++i)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t p = 0; p < kPlane; ++p)
        floats[static_cast<std::size_t>(i * kImage + c * kPlane + p)] =
            (packed[static_cast<std::size_t>((i * kPlane + p) * 3 + c)] / 255.0f - o.mean[c]) /
            o.stddev[c];
  const std::vector<float> want = run_reference(*graph, kN, floats);

  const Result from_packed = pipeline.submit(nhwc).get();
  const Result from_planes = pipeline.submit(nchw).get();
  ASSERT_EQ(from_planes.output.size(), want.size());
  // The two layouts share the arithmetic: bit for bit.
  EXPECT_EQ(from_planes.output, from_packed.output);
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(from_planes.output[i], want[i], 1e-5) << "output " << i;
}

TEST(PipelineUint8Nchw, HostNormalizationOfPlanesMatchesPackedBitForBit) {
  const PipelineOptions o = full_output();
  const std::vector<std::uint8_t> packed = packed_images(1);
  const std::vector<std::uint8_t> planes = to_planes(packed, 1);
  std::vector<float> from_packed(kImage), from_planes(kImage);
  pipeline::normalize_uint8_image(packed, kH, kW, o.mean, o.stddev, from_packed);
  pipeline::normalize_uint8_planar_image(planes, kH, kW, o.mean, o.stddev, from_planes);
  EXPECT_EQ(from_planes, from_packed);
  // Channel 2's plane starts at 2 * kPlane and holds the packed bytes 2, 5, ...
  EXPECT_FLOAT_EQ(from_planes[2 * kPlane + 1], (packed[5] / 255.0f - o.mean[2]) / o.stddev[2]);
}

TEST(PipelineUint8Nchw, BorrowedPlanesEqualOwnedOnes) {
  const auto graph = classifier();
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), full_output());
  Batch owned;
  owned.batch_size = 2;
  owned.format = InputFormat::kUint8Nchw;
  owned.nchw_u8 = to_planes(packed_images(2), 2);
  Batch borrowed;
  borrowed.batch_size = 2;
  borrowed.format = InputFormat::kUint8Nchw;
  borrowed.borrowed = std::as_bytes(std::span(owned.nchw_u8));
  EXPECT_EQ(pipeline.submit(borrowed).get().output, pipeline.submit(owned).get().output);

  Batch both = owned;
  both.borrowed = borrowed.borrowed;
  EXPECT_THROW(pipeline.submit(both), Error) << "owned and borrowed planes at once";
}

ErrorKind submit_error(Pipeline& pipeline, const Batch& batch) {
  try {
    pipeline.submit(batch);
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "submit accepted the batch";
  return ErrorKind::kInternal;
}

TEST(PipelineUint8Nchw, MisplacedOrMisSizedPlanesAreRefusedAtSubmit) {
  Pipeline pipeline(pipeline::cpu_executor_factory(classifier()), full_output());
  const std::vector<std::uint8_t> planes = to_planes(packed_images(2), 2);

  Batch in_nhwc;  // planes left in the packed format's vector
  in_nhwc.batch_size = 2;
  in_nhwc.format = InputFormat::kUint8Nchw;
  in_nhwc.nhwc = planes;
  EXPECT_EQ(submit_error(pipeline, in_nhwc), ErrorKind::kInvalidArgument);

  Batch wrong_format;  // nchw_u8 filled, format left at the FP32 default
  wrong_format.batch_size = 2;
  wrong_format.nchw_u8 = planes;
  EXPECT_EQ(submit_error(pipeline, wrong_format), ErrorKind::kInvalidArgument);

  Batch short_planes;
  short_planes.batch_size = 2;
  short_planes.format = InputFormat::kUint8Nchw;
  short_planes.nchw_u8.assign(planes.begin(), planes.end() - 1);
  EXPECT_EQ(submit_error(pipeline, short_planes), ErrorKind::kInvalidArgument);
  EXPECT_EQ(pipeline.stats().submitted, 0u);
}

TEST(PipelineUint8Nchw, AModelWithoutAnRgbInputRefusesPlanes) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(12)}));
  b.output(b.node("Relu", {x}));
  Pipeline pipeline(pipeline::cpu_executor_factory(std::make_shared<const ir::Graph>(b.finish())),
                    full_output());
  Batch batch;
  batch.batch_size = 1;
  batch.format = InputFormat::kUint8Nchw;
  batch.nchw_u8.assign(12, 7);
  EXPECT_EQ(submit_error(pipeline, batch), ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace anvil
