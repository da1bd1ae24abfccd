// `anvil bench --ablation` end to end on the gpu.models ResNet-18 fixture, at
// a small batch: runs the CLI (built next to this test binary: the anvil
// target) and reads its JSON. Every config's top-1 classes must equal a plain
// synchronous run of the same engine on the same data (the bench counts the
// differences per row), INT8 must have no number, and the trace and chart
// files must be well formed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu_test.h"

namespace anvil::test {
namespace {

namespace fs = std::filesystem;

fs::path anvil_binary() {
  // This test is build/tests/anvil_gpu_tests; the CLI is build/anvil.
  return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "anvil";
}

TEST(AblationBench, EveryConfigMatchesAPlainRun) {
  ANVIL_REQUIRE_GPU();
  const fs::path model = fs::path(ANVIL_GPU_MODEL_DIR) / "resnet18.onnx";
  ASSERT_TRUE(fs::exists(model)) << model << " is missing (made by the gpu.models fixture)";
  const fs::path cli = anvil_binary();
  ASSERT_TRUE(fs::exists(cli)) << cli << " is missing: build the anvil target too";
  const fs::path dir = fs::temp_directory_path() / "anvil_ablation_gpu_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path json = dir / "ablation.json", trace = dir / "trace.json", chart = dir / "c.png";
  const std::string command =
      cli.string() + " bench --ablation " + model.string() +
      " --batch 8 --batches 4 --timed 2 --repeats 3 --duration 0.2 --configs 0-12" +
      " --chunk-images 3" + " --timing-cache " + (dir / "cache").string() + " --json " +
      json.string() + " --trace " + trace.string() + " --chart " + chart.string();
  std::printf("running: %s\n", command.c_str());
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  std::ifstream in(json);
  const nlohmann::json report = nlohmann::json::parse(in);
  ASSERT_EQ(report["rows"].size(), 13u) << report.dump(2);
  EXPECT_GT(report["h2d_gb_per_s"].get<double>(), 1.0);
  for (const nlohmann::json& row : report["rows"]) {
    const int config = row["config"];
    SCOPED_TRACE("config " + std::to_string(config) + ": " + row.dump());
    ASSERT_TRUE(row["available"].get<bool>());
    EXPECT_GT(row["timed_ms"].get<double>(), 0.0);
    // Three runs of the timed batches; the reported one is their median.
    std::vector<double> runs = row["timed_runs_ms"].get<std::vector<double>>();
    ASSERT_EQ(runs.size(), 3u);
    std::sort(runs.begin(), runs.end());
    EXPECT_EQ(row["timed_ms"].get<double>(), runs[1]);
    EXPECT_GT(row["traced_ms"].get<double>(), 0.0);  // the trace's own run
    EXPECT_GT(row["images_per_s"].get<double>(), 0.0);
    EXPECT_GT(row["device_bytes"].get<std::size_t>(), 0u);
    // Every image of the 4 batches of 8 (config 8: and its small batches).
    EXPECT_EQ(row["top1_checked"].get<int>(), config == 8 ? 4 * 8 + 4 * 1 : 4 * 8);
    // Configs 9 and 10 normalize uint8 on the GPU, the plain run on the
    // host: a last-bit difference may flip a near tie, at most one image in
    // 32. In INT8 it moves whole rounding steps, which this random-weight
    // model amplifies (INT8 alone is 0.5 of its output range off FP32,
    // engine_int8_test.cc): 4 of 32 flipped on an H100 (2026-11-26), so a
    // quarter is allowed; results handed to the wrong request would flip
    // nearly all 32.
    // Configs 11 and 12 run each batch of 8 as chunks of 3, 3 and 2 against a
    // plain run at 8: equal unless a tactic's bits depend on the batch size,
    // which could flip a near tie as in 9 (11) or move INT8 rounding steps
    // as in 10 (12).
    const int allowed = config == 10 || config == 12 ? 8 : config == 9 || config == 11 ? 1 : 0;
    EXPECT_LE(row["top1_mismatches"].get<int>(), allowed);
  }

  std::ifstream trace_in(trace);
  const nlohmann::json events = nlohmann::json::parse(trace_in)["traceEvents"];
  int spans = 0;
  for (const nlohmann::json& e : events)
    spans += e["ph"] == "X";
  EXPECT_GE(spans, 2 * 2) << "at least two spans per timed batch: " << events.dump();

  std::ifstream png(chart, std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anvil::test
