// The numbers and text of `anvil bench --ablation` (tools/anvil/ablation_report.h,
// header-only): the --configs parser, speedups against the baseline, the PCIe
// floor, the markdown table, the JSON and the GPU lanes' summary.
#include "../../tools/anvil/ablation_report.h"

#include <gtest/gtest.h>

#include <string>

namespace anvil::cli {
namespace {

AblationReport sample_report() {
  AblationReport r;
  r.gpu = "Test GPU";
  r.batch = 128;
  r.timed_batches = 3;
  r.image_elements = 3 * 224 * 224;
  r.h2d_gb_per_s = 25.0;
  r.rows.push_back(
      {0, "baseline", true, "", 120.0, 3000, 100'000'000, 1280, 0, 0, 0, {120.0}, 121.0});
  r.rows.push_back({3,
                    "FP16 engine",
                    true,
                    "",
                    40.0,
                    9000,
                    60'000'000,
                    1280,
                    2,
                    47.5,
                    54.25,
                    {40.5, 39.25, 40.0},
                    41.0});
  r.rows.push_back({10, "INT8", false, std::string(kNeedsRgb), 0, 0, 0, 0, 0, 0, 0, {}, 0});
  return r;
}

TEST(AblationConfigs, ParsesListsAndRanges) {
  EXPECT_EQ(parse_config_list("0,1,3"), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(parse_config_list("9,0-2,1"), (std::vector<int>{0, 1, 2, 9}));
  EXPECT_EQ(parse_config_list("0-10").size(), 11u);
  EXPECT_EQ(parse_config_list("10"), (std::vector<int>{10}));
  // The chunked configs follow the guide's and the uint8 ones.
  EXPECT_EQ(parse_config_list("0-12").size(), 13u);
  EXPECT_EQ(parse_config_list("11-12"), (std::vector<int>{11, 12}));
  EXPECT_EQ(kAblationConfigCount, 13);
}

TEST(AblationConfigs, RejectsWhatIsNotAConfig) {
  for (const char* text : {"", "13", "1,,2", "a", "3-1", "-1", "1-", "0,99999"}) {
    try {
      parse_config_list(text);
      ADD_FAILURE() << "'" << text << "' was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << text;
      EXPECT_NE(std::string(e.what()).find("--configs"), std::string::npos) << e.what();
    }
  }
}

TEST(AblationReport, SpeedupIsBaselineOverRow) {
  const AblationReport r = sample_report();
  ASSERT_TRUE(speedup(r, r.rows[0]).has_value());
  EXPECT_DOUBLE_EQ(*speedup(r, r.rows[0]), 1.0);
  EXPECT_DOUBLE_EQ(*speedup(r, r.rows[1]), 3.0);
  EXPECT_FALSE(speedup(r, r.rows[2]).has_value());  // INT8: no number
  AblationReport no_base = r;
  no_base.rows.erase(no_base.rows.begin());
  EXPECT_FALSE(speedup(no_base, no_base.rows[0]).has_value());
}

TEST(AblationReport, PcieFloor) {
  const AblationReport r = sample_report();
  const double fp32 = timed_input_bytes(r, 4);
  EXPECT_DOUBLE_EQ(fp32, 3.0 * 128 * 3 * 224 * 224 * 4);  // 231,211,008 bytes
  EXPECT_DOUBLE_EQ(timed_input_bytes(r, 1), fp32 / 4);
  // 231.2 MB at 25 GB/s is 9.248 ms.
  EXPECT_NEAR(pcie_floor_ms(fp32, 25.0), 9.24844032, 1e-9);
  EXPECT_EQ(pcie_floor_ms(fp32, 0), 0.0);
  const std::string lines = floor_lines(r);
  EXPECT_NE(lines.find("25.00 GB/s"), std::string::npos) << lines;
  EXPECT_NE(lines.find("-> 9.248 ms"), std::string::npos) << lines;
  EXPECT_NE(lines.find("-> 2.312 ms"), std::string::npos) << lines;
}

TEST(AblationReport, MarkdownTable) {
  const std::string table = markdown_table(sample_report());
  EXPECT_NE(
      table.find("| config | ms (3 x 128, median) | range | speedup | images/s | device MB |"),
      std::string::npos)
      << table;
  // One run: no range.
  EXPECT_NE(table.find("| 0 baseline | 120.000 |  | 1.00x | 3000 | 100.0 | same (1280) |"),
            std::string::npos)
      << table;
  EXPECT_NE(
      table.find(
          "| 3 FP16 engine | 40.000 | 39.250-40.500 | 3.00x | 9000 | 60.0 | 2 of 1280 differ |"),
      std::string::npos)
      << table;
  EXPECT_NE(table.find("| 10 INT8 | not available (the input is not 3-channel) |"),
            std::string::npos)
      << table;
  // Header, separator and one line per row.
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5);
}

// The reported run is the median one, an actual run for an even count too.
TEST(AblationReport, MedianRunAndRange) {
  EXPECT_EQ(median_run({}), 0u);
  EXPECT_EQ(median_run({4.7}), 0u);
  EXPECT_EQ(median_run({4.8, 4.6, 4.7}), 2u);
  EXPECT_EQ(median_run({4.9, 4.6, 4.8, 4.7, 5.5}), 2u);
  EXPECT_EQ(median_run({4.8, 4.6, 4.9, 4.7}), 3u);  // 4.7, the lower middle
  EXPECT_EQ(median_run({4.6, 4.6, 4.6}), 1u);       // ties keep the runs' order
  EXPECT_EQ(run_range({}), "");
  EXPECT_EQ(run_range({4.7}), "");
  EXPECT_EQ(run_range({4.636, 4.598, 4.61}), "4.598-4.636");
}

TEST(AblationReport, JsonHasEveryNumberAndNoFakeInt8) {
  const nlohmann::json j = to_json(sample_report());
  EXPECT_EQ(j["gpu"], "Test GPU");
  EXPECT_DOUBLE_EQ(j["h2d_gb_per_s"].get<double>(), 25.0);
  EXPECT_NEAR(j["pcie_floor_ms"]["fp32"].get<double>(), 9.24844032, 1e-9);
  ASSERT_EQ(j["rows"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["rows"][1]["speedup"].get<double>(), 3.0);
  EXPECT_EQ(j["rows"][1]["top1_mismatches"], 2);
  EXPECT_EQ(j["rows"][1]["device_bytes"], 60'000'000u);
  EXPECT_DOUBLE_EQ(j["rows"][1]["input_h2d_gb_per_s"]["min"].get<double>(), 47.5);
  EXPECT_DOUBLE_EQ(j["rows"][1]["input_h2d_gb_per_s"]["max"].get<double>(), 54.25);
  EXPECT_FALSE(j["rows"][0].contains("input_h2d_gb_per_s"));  // pageable: not measured
  EXPECT_FALSE(j["rows"][2]["available"].get<bool>());
  EXPECT_EQ(j["rows"][1]["timed_runs_ms"], (std::vector<double>{40.5, 39.25, 40.0}));
  EXPECT_DOUBLE_EQ(j["rows"][1]["traced_ms"].get<double>(), 41.0);
  EXPECT_FALSE(j["rows"][2].contains("traced_ms"));
  EXPECT_FALSE(j["rows"][2].contains("timed_ms"));
  EXPECT_FALSE(j["rows"][2].contains("timed_runs_ms"));
  EXPECT_FALSE(j["rows"][2].contains("speedup"));
  EXPECT_EQ(j["rows"][2]["note"], std::string(kNeedsRgb));
}

// The GPU lanes: one entry per stream over every worker, from the first span
// to the last, busy counting overlapping spans once; other tracks ignored.
TEST(AblationGpuSummary, MergesEachStreamsSpansOverWorkers) {
  const std::vector<TraceSpan> spans{
      {"worker 0 GPU: upload", "batch 0 chunk 1/2", 0.0, 1.0},
      {"worker 0 GPU: upload", "batch 0 chunk 2/2", 1.5, 1.0},  // 1.5-2.5
      {"worker 1 GPU: upload", "batch 1 batch", 2.0, 1.0},      // 2.0-3.0, overlaps
      {"worker 0 GPU: compute", "batch 0 chunk 1/2", 1.0, 3.0},
      {"host: output processing", "batch 0", 0.0, 9.0},
  };
  EXPECT_EQ(gpu_summary(spans, 5.0),
            "GPU (ms from the first submit): compute 1.00-4.00 (busy 3.00); upload 0.00-3.00 "
            "(busy 2.50); last result at 5.00");
  EXPECT_EQ(gpu_summary({{"host: queued", "batch 0", 0.0, 1.0}}, 5.0), "");
  EXPECT_EQ(gpu_summary({}, 5.0), "");
}

}  // namespace
}  // namespace anvil::cli
