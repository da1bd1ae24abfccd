// Preformatted inputs (builder/preformat_input.h): which inputs a caller may
// write in the engine's storage, where the input-consumed event goes when
// their reformat layers are skipped, and the arena check that the storage,
// written before the enqueue, is not shared with an earlier layer's tensor.
#include "builder/preformat_input.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "builder/lower.h"
#include "plan/plan.h"
#include "plan/streams.h"
#include "plan_test_util.h"

namespace anvil {
namespace {

using builder::PreformatSite;
using plan::Plan;

plan::LayerDesc layer(std::string name, std::string kind, std::vector<int> inputs,
                      std::vector<int> outputs) {
  plan::LayerDesc l;
  l.name = std::move(name);
  l.kind = std::move(kind);
  l.inputs = std::move(inputs);
  l.outputs = std::move(outputs);
  return l;
}

// Tensors named `names` (those in `io` FP32 NCHW, the rest FP16 NHWC, all
// 16 x 8 x 8), no weights.
Plan plan_of(const std::vector<std::string>& names, std::vector<plan::IoBinding> io,
             std::vector<plan::LayerDesc> layers) {
  Plan p = testing::small_plan();
  p.tensors.clear();
  for (std::size_t i = 0; i < names.size(); ++i) {
    bool is_io = false;
    for (const plan::IoBinding& b : io)
      is_io = is_io || b.tensor_id == static_cast<int>(i);
    p.tensors.push_back(
        {static_cast<int>(i), names[i], is_io ? DType::kFloat32 : DType::kFloat16,
         is_io ? "NCHW" : "NHWC",
         is_io ? std::vector<std::int64_t>{-1, 16, 8, 8} : std::vector<std::int64_t>{-1, 8, 8, 16},
         std::nullopt});
  }
  p.io = std::move(io);
  p.weights.clear();
  p.layers = std::move(layers);
  return p;
}

// A ResNet block in miniature (as tests/unit/streams_test.cc's):
//   L0 reformat_in  input -> x      L3 downsample  x -> d
//   L1 conv1        x -> a          L4 add         a2, d -> s
//   L2 conv1b       a -> a2         L5 reformat_out s -> output
Plan block_plan() {
  return plan_of(
      {"input", "x", "a", "a2", "d", "s", "output"}, {{"input", 0, true}, {"output", 6, false}},
      {layer("reformat_in", "reformat_in", {0}, {1}), layer("conv1", "conv", {1}, {2}),
       layer("conv1b", "conv", {2}, {3}), layer("downsample", "conv", {1}, {4}),
       layer("add", "eltwise", {3, 4}, {5}), layer("reformat_out", "reformat_out", {5}, {6})});
}

// Two inputs, the second one's reformat after a layer of the first's:
//   L0 reformat_in  A -> a    L2 reformat_in  B -> x     L4 reformat_out y -> out
//   L1 relu         a -> b    L3 add          b, x -> y
Plan two_input_plan() {
  return plan_of(
      {"A", "a", "b", "B", "x", "y", "out"}, {{"A", 0, true}, {"B", 3, true}, {"out", 6, false}},
      {layer("reformat_a", "reformat_in", {0}, {1}), layer("relu", "eltwise", {1}, {2}),
       layer("reformat_b", "reformat_in", {3}, {4}), layer("add", "eltwise", {2, 4}, {5}),
       layer("reformat_out", "reformat_out", {5}, {6})});
}

ErrorKind kind_of(const std::function<void()>& f, std::string& message) {
  try {
    f();
  } catch (const Error& e) {
    message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ErrorKind::kInternal;
}

void expect_site(const PreformatSite& site, int input_tensor, int layer, int storage) {
  EXPECT_EQ(site.input_tensor, input_tensor);
  EXPECT_EQ(site.layer, layer);
  EXPECT_EQ(site.storage, storage);
}

TEST(PreformatInput, TheSiteIsTheInputsOnlyReformatLayer) {
  expect_site(builder::preformat_site(block_plan(), "input"), 0, 0, 1);
  expect_site(builder::preformat_site(two_input_plan(), "B"), 3, 2, 4);
}

// A stem that reads the input itself and lists the FP16 storage as its input
// 1 (builder/fuse_conv_max_pool.h): the site is the stem, nothing to skip.
//   L0 stem  input, x -> a    L1 reformat_out  a -> output
Plan stem_plan() {
  return plan_of({"input", "x", "a", "output"}, {{"input", 0, true}, {"output", 3, false}},
                 {layer("stem", "conv_max_pool", {0, 1}, {2}),
                  layer("reformat_out", "reformat_out", {2}, {3})});
}

TEST(PreformatInput, AStemThatReadsTheInputItselfIsASiteWithNothingToSkip) {
  const Plan p = stem_plan();
  const PreformatSite site = builder::preformat_site(p, "input");
  expect_site(site, 0, 0, 1);
  EXPECT_FALSE(site.skip_layer);
  EXPECT_TRUE(builder::preformat_site(block_plan(), "input").skip_layer);
  // The stem reads the input (or the storage): the input is consumed after it.
  EXPECT_EQ(builder::input_consumed_after(p, {}), 0);
  EXPECT_EQ(builder::input_consumed_after(p, std::vector<PreformatSite>{site}), 0);
  EXPECT_EQ(builder::storage_clash(p, site, std::vector<std::size_t>(4, 0), 2), -1);

  Plan swapped = stem_plan();
  swapped.layers[0].inputs = {1, 0};  // the input as the storage: not such a stem
  std::string message;
  EXPECT_EQ(kind_of([&] { builder::preformat_site(swapped, "input"); }, message),
            ErrorKind::kUnsupported);
  Plan one = stem_plan();
  one.layers[0].inputs = {0};  // a stem with no storage to write
  EXPECT_EQ(kind_of([&] { builder::preformat_site(one, "input"); }, message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("'stem' (conv_max_pool)"), std::string::npos) << message;
}

TEST(PreformatInput, UnknownInputsAndOutputsAreInvalidArguments) {
  const Plan p = two_input_plan();
  std::string message;
  EXPECT_EQ(kind_of([&] { builder::preformat_site(p, "C"); }, message),
            ErrorKind::kInvalidArgument);
  EXPECT_NE(message.find("no input 'C'"), std::string::npos) << message;
  EXPECT_NE(message.find("A, B"), std::string::npos) << message;
  EXPECT_EQ(kind_of([&] { builder::preformat_site(p, "out"); }, message),
            ErrorKind::kInvalidArgument);
  EXPECT_NE(message.find("no input 'out'"), std::string::npos) << message;
}

TEST(PreformatInput, AnInputReadByAnotherLayerIsUnsupported) {
  Plan p = block_plan();
  p.layers[3].inputs = {0};  // the downsample reads the input itself too
  std::string message;
  EXPECT_EQ(kind_of([&] { builder::preformat_site(p, "input"); }, message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("input 'input'"), std::string::npos) << message;
  EXPECT_NE(message.find("'reformat_in' (reformat_in), 'downsample' (conv)"), std::string::npos)
      << message;

  Plan direct = block_plan();
  direct.layers[0].kind = "conv";  // read by a conv, not a reformat
  EXPECT_EQ(kind_of([&] { builder::preformat_site(direct, "input"); }, message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("'reformat_in' (conv)"), std::string::npos) << message;

  Plan unread = block_plan();
  unread.layers.erase(unread.layers.begin());
  EXPECT_EQ(kind_of([&] { builder::preformat_site(unread, "input"); }, message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("no layer reads it"), std::string::npos) << message;
}

TEST(PreformatInput, TheConsumedEventFollowsTheLastStorageReader) {
  Plan p = block_plan();
  const PreformatSite site = builder::preformat_site(p, "input");
  EXPECT_EQ(builder::input_consumed_after(p, {}), 0) << "the reformat layer reads the input";
  const std::vector<PreformatSite> skipped{site};
  EXPECT_EQ(builder::input_consumed_after(p, skipped), 3) << "conv1 and downsample read x";
  // The downsample on an auxiliary stream: no point on stream 0 follows it
  // but the join after the last layer.
  plan::assign_streams(p, 1);
  ASSERT_EQ(p.layers[3].stream, 1);
  EXPECT_EQ(builder::input_consumed_after(p, skipped), 6);
  EXPECT_EQ(builder::input_consumed_after(p, {}), 0);
}

TEST(PreformatInput, TheConsumedEventCoversTheOtherInputs) {
  const Plan p = two_input_plan();
  const PreformatSite a = builder::preformat_site(p, "A");
  const PreformatSite b = builder::preformat_site(p, "B");
  EXPECT_EQ(builder::input_consumed_after(p, {}), 2);
  // A preformatted: B's reformat (L2) still reads an input, after A's reader.
  EXPECT_EQ(builder::input_consumed_after(p, std::vector<PreformatSite>{a}), 2);
  // B preformatted: its storage's reader, add (L3).
  EXPECT_EQ(builder::input_consumed_after(p, std::vector<PreformatSite>{b}), 3);
  EXPECT_EQ(builder::input_consumed_after(p, std::vector<PreformatSite>{a, b}), 3);
}

TEST(PreformatInput, AStorageSharingBytesWithAnEarlierLayersTensorClashes) {
  const Plan p = two_input_plan();
  const PreformatSite b = builder::preformat_site(p, "B");
  const std::size_t bytes = builder::tensor_bytes(p.tensors[4], 2);  // 2 images
  ASSERT_EQ(bytes, 2u * 8 * 8 * 16 * 2);
  // Offsets by tensor id: A a b B x y out (IO tensors at 0).
  std::vector<std::size_t> offsets{0, 0, bytes, 0, 2 * bytes, bytes, 0};
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 2), -1) << "x apart from a and b";
  offsets[4] = 0;  // x over a, which relu (L1, before B's reformat) reads
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 2), 1);
  offsets[4] = bytes / 2;  // partly over a and b
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 2), 1);
  offsets[4] = bytes + bytes - 256;  // the last 256 bytes of b
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 2), 2);
  // Offsets laid out for one image's sizes: at two images b reaches into x.
  offsets = {0, 0, bytes / 2, 0, bytes, bytes / 2, 0};
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 1), -1);
  EXPECT_EQ(builder::storage_clash(p, b, offsets, 2), 2) << "at two images b reaches x";

  // A reformat layer that runs first has nothing before it.
  const PreformatSite a = builder::preformat_site(p, "A");
  EXPECT_EQ(builder::storage_clash(p, a, std::vector<std::size_t>(7, 0), 2), -1);
}

TEST(PreformatInput, PlanArenaOffsetsOfABlockNeverClash) {
  const Plan p = block_plan();
  const PreformatSite site = builder::preformat_site(p, "input");
  for (const std::int64_t batch : {1, 3, 8}) {
    const builder::MemoryPlan arena = builder::plan_arena(p, batch);
    EXPECT_EQ(builder::storage_clash(p, site, arena.offsets, batch), -1) << "batch " << batch;
  }
}

}  // namespace
}  // namespace anvil
