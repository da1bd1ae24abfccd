// The numbers of `anvil bench --ablation` and how they are shown: the config
// list, speedups, the PCIe floor, the markdown table, the JSON and the GPU
// lanes' summary line. Header-only
// and free of CUDA so the unit tests (tests/unit/ablation_report_test.cc)
// include it without linking the CLI.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anvil/error.h"

namespace anvil::cli {

// The rows of the TensorRT optimization guide's table (approaches 0..8), and
// more of Anvil's; each adds one thing to the row above it, except 8,
// which adds a second profile to 7, and 9, which changes 7's input to uint8
// (10 runs 9 on an INT8 engine). 11 is 6 (one worker, CUDA graphs, FP32
// input) with each batch split into chunks whose uploads and networks
// overlap (PipelineOptions::chunk_images); 12 runs 11 on the INT8 engine.
inline constexpr std::array<std::string_view, 13> kAblationConfigNames = {
    "baseline: FP32, per-batch cudaMalloc/cudaFree, pageable, synchronous",
    "reuse device buffers",
    "pinned host memory",
    "FP16 engine",
    "copy/compute overlap on two streams",
    "output processing on a thread (Pipeline)",
    "CUDA graph",
    "two contexts on two threads",
    "two optimization profiles (+ a small batch per batch)",
    "uint8 NHWC input, normalized on the GPU",
    "INT8 engine (uint8 input, as 9)",
    "sub-batch chunks: upload and compute overlap within a batch (FP16, FP32 input)",
    "sub-batch chunks on the INT8 engine (FP32 input, as 11)",
};
inline constexpr int kAblationConfigCount = static_cast<int>(kAblationConfigNames.size());
inline constexpr std::string_view kNeedsRgb = "not available (the input is not 3-channel)";

struct AblationRow {
  int config = 0;
  std::string name;
  bool available = true;
  std::string note;               // why it is unavailable, or what differs
  double timed_ms = 0;            // the timed batches, first submit to last result: the median run
  double images_per_s = 0;        // the throughput run
  std::size_t device_bytes = 0;   // weights + context memory + IO buffers
  std::int64_t top1_checked = 0;  // images compared with a plain run
  std::int64_t top1_mismatches = 0;  // of those, top-1 classes that differ
  // The config's own pinned data uploaded a batch at a time, slowest and
  // fastest batch, GB/s; 0 where it uploads from pageable memory.
  double input_h2d_min_gb_per_s = 0, input_h2d_max_gb_per_s = 0;
  // Every run of the timed batches, in order (timed_ms is their median).
  std::vector<double> timed_runs_ms;
  // One more run of them, recorded for the Chrome trace: with the GPU
  // timeline's events in the pipeline configs (PipelineOptions::gpu_timeline).
  double traced_ms = 0;
};

struct AblationReport {
  std::string gpu;
  std::string model;
  std::int64_t batch = 128;
  int batches = 10;
  int timed_batches = 3;
  double duration_s = 2;
  std::int64_t image_elements = 3 * 224 * 224;  // one image's input values
  double h2d_gb_per_s = 0;                      // pinned, best of several (1 GB = 1e9 bytes)
  std::vector<AblationRow> rows;
};

// "0,1,3" or "0-3,9" -> sorted unique configs; kInvalidArgument naming the
// option for anything else.
inline std::vector<int> parse_config_list(std::string_view text) {
  auto bad = [&](std::string_view why) -> std::vector<int> {
    fail(ErrorKind::kInvalidArgument, "--configs '", text, "': ", why, "; expected numbers 0..",
         kAblationConfigCount - 1, " such as 0,1,3 or 0-4,9");
  };
  std::array<bool, kAblationConfigCount> chosen{};
  std::size_t start = 0;
  if (text.empty()) return bad("empty");
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, end - start);
    const std::size_t dash = item.find('-');
    auto number = [&](std::string_view digits) {
      if (digits.empty() || digits.size() > 3) bad("'" + std::string(item) + "' is not a config");
      int value = 0;
      for (char c : digits) {
        if (c < '0' || c > '9') bad("'" + std::string(item) + "' is not a config");
        value = value * 10 + (c - '0');
      }
      if (value >= kAblationConfigCount) bad("there is no config " + std::to_string(value));
      return value;
    };
    const int first = number(item.substr(0, dash));
    const int last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (last < first) bad("'" + std::string(item) + "' is an empty range");
    for (int c = first; c <= last; ++c)
      chosen[static_cast<std::size_t>(c)] = true;
    start = end + 1;
  }
  std::vector<int> configs;
  for (int c = 0; c < kAblationConfigCount; ++c)
    if (chosen[static_cast<std::size_t>(c)]) configs.push_back(c);
  return configs;
}

// The run whose time is the median of `ms` (for an even count the lower of
// the two middle ones, so that it is a run that happened); 0 for none.
inline std::size_t median_run(const std::vector<double>& ms) {
  if (ms.empty()) return 0;
  std::vector<std::size_t> order(ms.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return ms[a] < ms[b]; });
  return order[(order.size() - 1) / 2];
}

inline const AblationRow* find_row(const AblationReport& report, int config) {
  for (const AblationRow& row : report.rows)
    if (row.config == config) return &row;
  return nullptr;
}

// Baseline time over this row's: nothing without a measured baseline row or
// for an unavailable row.
inline std::optional<double> speedup(const AblationReport& report, const AblationRow& row) {
  const AblationRow* base = find_row(report, 0);
  if (!base || !base->available || !row.available || base->timed_ms <= 0 || row.timed_ms <= 0)
    return std::nullopt;
  return base->timed_ms / row.timed_ms;
}

// The input bytes of the timed batches, at `bytes_per_value` per input value
// (4 for FP32, 1 for uint8).
inline double timed_input_bytes(const AblationReport& report, int bytes_per_value) {
  return static_cast<double>(report.timed_batches) * static_cast<double>(report.batch) *
         static_cast<double>(report.image_elements) * bytes_per_value;
}

// The fastest those bytes can cross PCIe at the measured bandwidth; 0 if none.
inline double pcie_floor_ms(double bytes, double gb_per_s) {
  return gb_per_s > 0 ? bytes / (gb_per_s * 1e9) * 1e3 : 0.0;
}

inline std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), pattern, value);
  return text;
}

// "4.598-4.636" over the runs, "" for fewer than two.
inline std::string run_range(const std::vector<double>& ms) {
  if (ms.size() < 2) return "";
  const auto [low, high] = std::minmax_element(ms.begin(), ms.end());
  return format("%.3f", *low) + "-" + format("%.3f", *high);
}

inline std::string top1_cell(const AblationRow& row) {
  if (!row.available) return "";
  if (row.top1_checked == 0) return "not checked";
  if (row.top1_mismatches == 0) return "same (" + std::to_string(row.top1_checked) + ")";
  return std::to_string(row.top1_mismatches) + " of " + std::to_string(row.top1_checked) +
         " differ";
}

inline std::string markdown_table(const AblationReport& report) {
  std::string out;
  out += "| config | ms (" + std::to_string(report.timed_batches) + " x " +
         std::to_string(report.batch) +
         ", median) | range | speedup | images/s | device MB | top-1 vs plain |\n";
  out += "|---|---|---|---|---|---|---|\n";
  for (const AblationRow& row : report.rows) {
    out += "| " + std::to_string(row.config) + " " + row.name + " | ";
    if (!row.available) {
      out += row.note + " | | | | | |\n";
      continue;
    }
    const std::optional<double> up = speedup(report, row);
    out += format("%.3f", row.timed_ms) + " | " + run_range(row.timed_runs_ms) + " | " +
           (up ? format("%.2fx", *up) : "") + " | " + format("%.0f", row.images_per_s) + " | " +
           format("%.1f", static_cast<double>(row.device_bytes) / 1e6) + " | " + top1_cell(row) +
           " |\n";
  }
  return out;
}

// The bandwidth and the floors it implies for the timed batches' input.
inline std::string floor_lines(const AblationReport& report) {
  const double fp32 = timed_input_bytes(report, 4), u8 = timed_input_bytes(report, 1);
  return "H2D bandwidth (pinned, best of several 64 MiB copies): " +
         format("%.2f", report.h2d_gb_per_s) + " GB/s\nPCIe floor for " +
         std::to_string(report.timed_batches) + " batches of " + std::to_string(report.batch) +
         ": FP32 input " + format("%.1f", fp32 / 1e6) + " MB -> " +
         format("%.3f", pcie_floor_ms(fp32, report.h2d_gb_per_s)) + " ms; uint8 input " +
         format("%.1f", u8 / 1e6) + " MB -> " +
         format("%.3f", pcie_floor_ms(u8, report.h2d_gb_per_s)) + " ms\n";
}

inline nlohmann::json to_json(const AblationReport& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const AblationRow& row : report.rows) {
    nlohmann::json r = {{"config", row.config}, {"name", row.name}, {"available", row.available}};
    if (!row.note.empty()) r["note"] = row.note;
    if (row.available) {
      r["timed_ms"] = row.timed_ms;
      if (!row.timed_runs_ms.empty()) r["timed_runs_ms"] = row.timed_runs_ms;
      if (row.traced_ms > 0) r["traced_ms"] = row.traced_ms;
      r["images_per_s"] = row.images_per_s;
      r["device_bytes"] = row.device_bytes;
      r["top1_checked"] = row.top1_checked;
      r["top1_mismatches"] = row.top1_mismatches;
      if (const auto up = speedup(report, row)) r["speedup"] = *up;
      if (row.input_h2d_min_gb_per_s > 0)
        r["input_h2d_gb_per_s"] = {{"min", row.input_h2d_min_gb_per_s},
                                   {"max", row.input_h2d_max_gb_per_s}};
    }
    rows.push_back(std::move(r));
  }
  const double fp32 = timed_input_bytes(report, 4), u8 = timed_input_bytes(report, 1);
  return {{"gpu", report.gpu},
          {"model", report.model},
          {"batch", report.batch},
          {"batches", report.batches},
          {"timed_batches", report.timed_batches},
          {"duration_s", report.duration_s},
          {"image_elements", report.image_elements},
          {"h2d_gb_per_s", report.h2d_gb_per_s},
          {"pcie_floor_ms",
           {{"fp32", pcie_floor_ms(fp32, report.h2d_gb_per_s)},
            {"uint8", pcie_floor_ms(u8, report.h2d_gb_per_s)}}},
          {"rows", rows}};
}

// One span of the Chrome trace of a config's timed batches.
struct TraceSpan {
  std::string track, name;
  double start_ms = 0, duration_ms = 0;  // from the first timed submit
};

// The GPU lanes of a config's timed spans in one line (the pipeline configs, from
// PipelineOptions::gpu_timeline): when the uploads ran and how busy the copy
// and compute streams were, against `timed_ms`, the time to the last result.
// "" when there are no GPU spans.
inline std::string gpu_summary(const std::vector<TraceSpan>& spans, double timed_ms) {
  struct Lane {
    std::vector<std::pair<double, double>> spans;
    double first = 0, last = 0, busy = 0;
  };
  std::map<std::string, Lane> lanes;  // by stream, over every worker
  for (const TraceSpan& s : spans) {
    const std::size_t at = s.track.find(" GPU: ");
    if (at == std::string::npos) continue;
    lanes[s.track.substr(at + 6)].spans.emplace_back(s.start_ms, s.start_ms + s.duration_ms);
  }
  if (lanes.empty()) return "";
  for (auto& [name, lane] : lanes) {
    std::sort(lane.spans.begin(), lane.spans.end());
    lane.first = lane.spans.front().first;
    double from = lane.first, to = lane.first;
    for (const auto& [start, end] : lane.spans) {  // the union of the spans
      if (start > to) {
        lane.busy += to - from;
        from = start;
      }
      to = std::max(to, end);
    }
    lane.busy += to - from;
    lane.last = to;
  }
  std::string line = "GPU (ms from the first submit):";
  char part[128];
  for (const auto& [name, lane] : lanes) {
    std::snprintf(part, sizeof part, " %s %.2f-%.2f (busy %.2f);", name.c_str(), lane.first,
                  lane.last, lane.busy);
    line += part;
  }
  std::snprintf(part, sizeof part, " last result at %.2f", timed_ms);
  return line + part;
}

}  // namespace anvil::cli
