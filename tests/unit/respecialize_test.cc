// builder::respecialize: a plan lowered at one input height and width, its
// geometry re-derived for another, must equal the plan lowered at the other
// (tensors' dims and every layer's params, compared as JSON), on small graphs
// with odd sizes (ceil/floor rounding, SAME pads, residuals) and on the
// generated ResNet-18 and MobileNetV2.
#include "builder/respecialize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/lower.h"
#include "builder/spatial_dims.h"
#include "generated_models.h"
#include "onnx/importer.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;
using passes::testing::GraphBuilder;

ir::Attributes window(std::vector<std::int64_t> kernel, std::vector<std::int64_t> strides) {
  ir::Attributes a;
  a.set("kernel_shape", std::move(kernel));
  a.set("strides", std::move(strides));
  return a;
}

// x[N,3,H,W] -> stem conv 7x7/2 + ReLU -> MaxPool 3/2 pad 1 -> residual block
// (3x3 convs, Add, ReLU) -> conv 3x3/2 SAME_UPPER -> AveragePool 3/2 ceil ->
// MaxPool 2/2 floor -> GAP -> Flatten -> Gemm: every geometry rule once.
void spatial_network(GraphBuilder& b) {
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3),
                                         ir::Dim::named("H"), ir::Dim::named("W")}));
  ir::Value* y = b.node("Relu", {b.conv(x, 3, 16, 7, true, 1, 2)});
  ir::Attributes stem_pool = window({3, 3}, {2, 2});
  stem_pool.set("pads", std::vector<std::int64_t>{1, 1, 1, 1});
  y = b.node("MaxPool", {y}, stem_pool);
  ir::Value* r = b.node("Relu", {b.conv(y, 16, 16, 3, true)});
  y = b.node("Relu", {b.node("Add", {b.conv(r, 16, 16, 3, true), y})});
  ir::Attributes same = window({3, 3}, {2, 2});
  same.set("auto_pad", std::string("SAME_UPPER"));
  y = b.node("Conv", {y, b.weight("same.w", {24, 16, 3, 3}, 0.3f), b.weight("same.b", {24})}, same);
  ir::Attributes avg = window({3, 3}, {2, 2});
  avg.set("ceil_mode", std::int64_t{1});
  y = b.node("AveragePool", {y}, avg);
  y = b.node("MaxPool", {y}, window({2, 2}, {2, 2}));
  y = b.node("Flatten", {b.node("GlobalAveragePool", {y})});
  ir::Attributes gemm;
  gemm.set("transB", std::int64_t{1});
  b.output(b.node("Gemm", {y, b.weight("fc.w", {10, 24}), b.weight("fc.b", {10})}, gemm));
}

InputDims image(std::int64_t h, std::int64_t w, const std::string& input = "x") {
  return {{input, {1, 3, h, w}}};
}

// Everything but the weights and tactics, as JSON: what respecialize must match.
json geometry(const plan::Plan& p) {
  json out = json::object();
  for (const plan::TensorDesc& t : p.tensors)
    out["tensors"].push_back({{"name", t.name}, {"layout", t.layout}, {"dims", t.dims}});
  for (const plan::LayerDesc& l : p.layers)
    out["layers"].push_back({{"name", l.name},
                             {"kind", l.kind},
                             {"inputs", l.inputs},
                             {"outputs", l.outputs},
                             {"params", json::parse(l.params)}});
  return out;
}

// The first difference between two geometries, for the failure message.
std::string first_difference(const json& got, const json& want) {
  const json patch = json::diff(want, got);
  return patch.empty() ? "" : patch[0].dump();
}

plan::Plan lowered(ir::Graph graph, const InputDims& dims, bool fp16) {
  fix_input_dims(graph, dims);
  passes::PassManager().run(graph);
  return lower_graph(graph, {.fp16 = fp16, .tf32 = false, .max_batch = 4});
}

plan::Plan small_at(const InputDims& dims, bool fp16) {
  return lowered(passes::testing::build(spatial_network), dims, fp16);
}

void expect_respecializes(const std::function<plan::Plan(const InputDims&)>& lower,
                          const InputDims& a, const InputDims& b) {
  const plan::Plan from = lower(a);
  const plan::Plan want = lower(b);
  const plan::Plan got = respecialize(from, b);
  const json g = geometry(got), w = geometry(want);
  EXPECT_EQ(g, w) << "lowered at " << json(a).dump() << ", respecialized to " << json(b).dump()
                  << ": first difference " << first_difference(g, w);
  EXPECT_TRUE(got.weights.empty());
  EXPECT_EQ(got.layers.size(), from.layers.size());
}

TEST(Respecialize, SmallNetworkMatchesLoweringAtEachSize) {
  for (const bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    auto lower = [fp16](const InputDims& d) { return small_at(d, fp16); };
    expect_respecializes(lower, image(96, 96), image(64, 64));
    expect_respecializes(lower, image(96, 96), image(128, 128));
    expect_respecializes(lower, image(96, 96), image(65, 77));  // odd: ceil and floor differ
    expect_respecializes(lower, image(64, 64), image(161, 225));
    expect_respecializes(lower, image(161, 225), image(96, 96));
  }
}

TEST(Respecialize, ChangesWhatDependsOnTheSize) {
  const plan::Plan a = small_at(image(96, 96), true);
  const plan::Plan b = respecialize(a, image(65, 77));
  // The input keeps a dynamic batch, takes the new dims; the logits keep theirs.
  EXPECT_EQ(b.tensors[0].dims, (std::vector<std::int64_t>{-1, 3, 65, 77}));
  EXPECT_EQ(b.tensors.back().dims, a.tensors.back().dims);
  ASSERT_EQ(b.layers.at(1).kind, "conv");
  ASSERT_EQ(b.layers.at(2).kind, "pool");
  const json stem = json::parse(b.layers[1].params);
  const json pool = json::parse(b.layers[2].params);
  EXPECT_EQ(stem["in_h"], 65);
  EXPECT_EQ(stem["out_h"], 33);  // (65 + 6 - 7) / 2 + 1
  EXPECT_EQ(stem["out_w"], 39);  // (77 + 6 - 7) / 2 + 1
  EXPECT_EQ(pool["out_h"], 17);  // (33 + 2 - 3) / 2 + 1
  EXPECT_EQ(pool["out_w"], 20);  // (39 + 2 - 3) / 2 + 1
  // SAME_UPPER pads follow the size: a 3x3/2 window over 17 rows pads 1 + 1,
  // over 20 columns 0 + 1 (the odd pixel at the end).
  const plan::LayerDesc* same = nullptr;
  for (const plan::LayerDesc& l : b.layers)
    if (l.kind == "conv" && json::parse(l.params).contains("auto_pad")) same = &l;
  ASSERT_NE(same, nullptr);
  const json sp = json::parse(same->params);
  EXPECT_EQ(sp["in_h"], 17);
  EXPECT_EQ(sp["out_h"], 9);
  EXPECT_EQ(sp["pad_top"], 1);
  EXPECT_EQ(sp["pad_bottom"], 1);
  EXPECT_EQ(sp["pad_left"], 0);
  EXPECT_EQ(sp["pad_right"], 1);
  EXPECT_NE(geometry(a), geometry(b));
}

TEST(Respecialize, RefusesSizesTheNetworkCannotRun) {
  const plan::Plan a = small_at(image(96, 96), false);
  try {
    respecialize(a, image(3, 3));  // the 7x7 stem does not fit
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("x 1x3x3x3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(respecialize(a, {{"x", {1, 4, 96, 96}}}), Error);  // channels are fixed
}

TEST(Respecialize, RefusesLayerKindsItDoesNotKnow) {
  plan::Plan a = small_at(image(64, 64), false);
  a.layers.at(2).kind = "future_kind";
  try {
    respecialize(a, image(96, 96));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find(a.layers[2].name), std::string::npos) << e.what();
  }
}

TEST(Respecialize, SpatialRangesAreDetected) {
  plan::Plan a = small_at(image(96, 96), false);
  EXPECT_FALSE(has_spatial_ranges(a));
  a.profiles.at(0).inputs.at("x").max = {4, 3, 128, 128};
  EXPECT_TRUE(has_spatial_ranges(a));
  EXPECT_EQ(profile_dims(a, 0, "max").at("x"), (std::vector<std::int64_t>{4, 3, 128, 128}));
}

TEST(SymbolicDims, NamesTheDynamicDims) {
  const ir::Graph g = passes::testing::build(spatial_network);
  const auto dims = symbolic_dims(g);
  ASSERT_EQ(dims.count("x"), 1u);
  EXPECT_EQ(dims.at("x"), (std::vector<std::size_t>{2, 3}));
  ir::Graph fixed = passes::testing::build(spatial_network);
  fix_input_dims(fixed, image(64, 80));
  EXPECT_TRUE(symbolic_dims(fixed).empty());
  EXPECT_EQ(ir::to_string(fixed.outputs[0]->shape), "[N,10]");
  EXPECT_THROW(fix_input_dims(fixed, {{"y", {1, 3, 8, 8}}}), Error);
}

// ---- Generated models ---------------------------------------------------------

TEST(Respecialize, GeneratedModelsMatchLoweringAtEachSize) {
  for (const char* name : {"resnet18", "mobilenetv2"}) {
    const std::filesystem::path model = test::generated_model(name, "respecialize_test");
    if (model.empty()) GTEST_SKIP() << "cannot generate the models (no .venv)";
    for (const bool fp16 : {false, true}) {
      SCOPED_TRACE(cat(name, fp16 ? " fp16" : " fp32"));
      auto at = [&](const InputDims& d) { return lowered(onnx::import_model(model), d, fp16); };
      expect_respecializes(at, image(224, 224, "input"), image(160, 160, "input"));
      expect_respecializes(at, image(224, 224, "input"), image(256, 256, "input"));
      expect_respecializes(at, image(224, 224, "input"), image(225, 161, "input"));
    }
    std::filesystem::remove(model);
  }
}

}  // namespace
}  // namespace anvil::builder
