// What `anvil eval` prints: a markdown table of top-1 accuracy per precision
// and the same as JSON (--json FILE).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anvil::cli {

struct EvalRow {
  std::string precision;  // "fp32", "fp16", or "int8 <calibrator>"
  std::string device;     // "gpu" or "cpu"
  std::int64_t correct = 0;
  std::int64_t total = 0;
  double build_seconds = 0;  // 0 on the CPU (nothing is built)
  double images_per_second = 0;

  double top1_percent() const;
};

struct EvalReport {
  std::string model, dataset, split;
  std::vector<EvalRow> rows;
  std::vector<std::string> notes;  // printed under the table, e.g. why a precision is missing
};

// The table, one row per precision, with each row's top-1 minus the FP32
// row's in percentage points ("-" without an FP32 row), then the notes.
std::string markdown_table(const EvalReport& report);

// Writes the report as JSON; kIo naming `path` when it cannot.
void write_eval_json(const EvalReport& report, const std::string& path);

}  // namespace anvil::cli
