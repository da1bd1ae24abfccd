// Auxiliary streams (plan/streams.h): which layers go where, the events
// between them, and an arena that keeps concurrent layers' tensors apart.
#include "plan/streams.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "anvil/error.h"
#include "builder/lower.h"
#include "plan/plan.h"
#include "plan_test_util.h"

namespace anvil {
namespace {

using plan::LayerWindow;
using plan::Plan;

plan::LayerDesc layer(std::string name, std::vector<int> inputs, std::vector<int> outputs) {
  plan::LayerDesc l;
  l.name = std::move(name);
  l.kind = "eltwise";
  l.inputs = std::move(inputs);
  l.outputs = std::move(outputs);
  return l;
}

// A ResNet block in miniature: conv1 -> conv1b on the main path, a
// downsample reading the block input beside them, then their sum.
//   L0 reformat_in  input -> x      L3 downsample  x -> d
//   L1 conv1        x -> a          L4 add         a2, d -> s
//   L2 conv1b       a -> a2         L5 reformat_out s -> output
Plan block_plan() {
  Plan p = testing::small_plan();
  p.tensors.clear();
  const std::vector<std::string> names{"input", "x", "a", "a2", "d", "s", "output"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool io = names[i] == "input" || names[i] == "output";
    p.tensors.push_back(
        {static_cast<int>(i), names[i], io ? DType::kFloat32 : DType::kFloat16,
         io ? "NCHW" : "NHWC",
         io ? std::vector<std::int64_t>{-1, 16, 8, 8} : std::vector<std::int64_t>{-1, 8, 8, 16},
         std::nullopt});
  }
  p.io = {{"input", 0, true}, {"output", 6, false}};
  p.profiles = {{.inputs = {{"input", {{1, 16, 8, 8}, {4, 16, 8, 8}, {8, 16, 8, 8}}}}}};
  p.weights.clear();
  p.layers = {layer("reformat_in", {0}, {1}), layer("conv1", {1}, {2}),
              layer("conv1b", {2}, {3}),      layer("downsample", {1}, {4}),
              layer("add", {3, 4}, {5}),      layer("reformat_out", {5}, {6})};
  return p;
}

std::vector<int> streams_of(const Plan& p) {
  std::vector<int> out;
  for (const plan::LayerDesc& l : p.layers)
    out.push_back(l.stream);
  return out;
}

bool share_memory(const Plan& p, const builder::MemoryPlan& arena, int t, int u, int batch) {
  const auto a = static_cast<std::size_t>(t), b = static_cast<std::size_t>(u);
  const std::size_t a_end = arena.offsets[a] + builder::tensor_bytes(p.tensors[a], batch);
  const std::size_t b_end = arena.offsets[b] + builder::tensor_bytes(p.tensors[b], batch);
  return arena.offsets[a] < b_end && arena.offsets[b] < a_end;
}

TEST(Streams, TheShortcutGoesToAnAuxiliaryStream) {
  Plan p = block_plan();
  plan::assign_streams(p, 1);
  EXPECT_EQ(streams_of(p), (std::vector<int>{0, 0, 0, 1, 0, 0}));
  plan::assign_streams(p, 0);
  EXPECT_EQ(streams_of(p), (std::vector<int>(6, 0)));
}

TEST(Streams, EventsJoinEveryCrossStreamInput) {
  Plan p = block_plan();
  plan::assign_streams(p, 1);
  const plan::StreamSchedule s = plan::schedule_streams(p);
  EXPECT_EQ(s.aux_streams, 1);
  ASSERT_EQ(s.layers.size(), 6u);
  EXPECT_EQ(s.layers[3].waits, (std::vector<int>{0}));  // x from reformat_in
  EXPECT_EQ(s.layers[4].waits, (std::vector<int>{3}));  // d from the downsample
  for (int i : {1, 2, 5})
    EXPECT_TRUE(s.layers[static_cast<std::size_t>(i)].waits.empty()) << "layer " << i;
  std::vector<bool> signals;
  for (const plan::LayerSchedule& l : s.layers)
    signals.push_back(l.signals);
  EXPECT_EQ(signals, (std::vector<bool>{true, false, false, true, false, false}));
}

TEST(Streams, WindowsSpanTheLayersThatMayRunAlongside) {
  Plan p = block_plan();
  auto as_pairs = [](const std::vector<LayerWindow>& w) {
    std::vector<std::pair<int, int>> out;
    for (const LayerWindow& x : w)
      out.emplace_back(x.first, x.last);
    return out;
  };
  EXPECT_EQ(as_pairs(plan::concurrency_windows(p)),
            (std::vector<std::pair<int, int>>{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}}));
  plan::assign_streams(p, 1);
  EXPECT_EQ(as_pairs(plan::concurrency_windows(p)),
            (std::vector<std::pair<int, int>>{{0, 0}, {1, 3}, {2, 3}, {1, 3}, {4, 4}, {5, 5}}));
}

// One stream lets the downsample's output reuse conv1's (dead by then); with
// the downsample beside conv1 they must be apart, and so must every pair of
// tensors of two layers that may run at once.
TEST(Streams, TheArenaKeepsConcurrentLayersTensorsApart) {
  Plan p = block_plan();
  constexpr int kBatch = 4;
  const int a = 2, d = 4;
  EXPECT_TRUE(share_memory(p, builder::plan_arena(p, kBatch), a, d, kBatch));
  plan::assign_streams(p, 1);
  const builder::MemoryPlan arena = builder::plan_arena(p, kBatch);
  const std::vector<LayerWindow> windows = plan::concurrency_windows(p);
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    for (std::size_t j = i + 1; j <= static_cast<std::size_t>(windows[i].last); ++j) {
      const plan::LayerDesc& li = p.layers[i];
      const plan::LayerDesc& lj = p.layers[j];
      for (const std::vector<int>* ti : {&li.inputs, &li.outputs})
        for (const std::vector<int>* tj : {&lj.inputs, &lj.outputs})
          for (int t : *ti)
            for (int u : *tj)
              if (t != u && t != 0 && u != 0 && t != 6 && u != 6) {  // 0, 6: the user's IO
                EXPECT_FALSE(share_memory(p, arena, t, u, kBatch))
                    << li.name << "'s " << p.tensors[static_cast<std::size_t>(t)].name << " and "
                    << lj.name << "'s " << p.tensors[static_cast<std::size_t>(u)].name;
              }
    }
  EXPECT_FALSE(share_memory(p, arena, a, d, kBatch));
}

TEST(Streams, IndependentLayersTakeTheAuxiliaryStreamsInTurn) {
  // Three shortcuts of one input: each independent of the layer before it.
  Plan p = block_plan();
  p.layers = {p.layers[0],           layer("b1", {1}, {2}),        layer("b2", {1}, {3}),
              layer("b3", {1}, {4}), layer("sum", {2, 3, 4}, {5}), p.layers[5]};
  plan::assign_streams(p, 2);
  EXPECT_EQ(streams_of(p), (std::vector<int>{0, 0, 1, 2, 0, 0}));
}

TEST(Streams, ThePlanFileKeepsTheStreams) {
  Plan p = block_plan();
  plan::assign_streams(p, 1);
  const Plan back = plan::deserialize_plan(plan::serialize_plan(p), "block.plan");
  EXPECT_EQ(streams_of(back), streams_of(p));
}

TEST(Streams, APlanWithAnInputReaderOffStreamZeroIsRefused) {
  Plan p = block_plan();
  p.layers[0].stream = 1;
  try {
    plan::deserialize_plan(plan::serialize_plan(p), "block.plan");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'reformat_in' reads the engine input 'input'"),
              std::string::npos)
        << e.what();
  }
  p.layers[0].stream = 0;
  p.layers[3].stream = plan::kMaxAuxStreams + 1;
  try {
    plan::serialize_plan(p);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'downsample' runs on stream 9, not 0..8"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace anvil
