#include "eval_report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "anvil/error.h"

namespace anvil::cli {

namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string label(const EvalRow& row) {
  // "int8 entropy" -> "INT8 entropy": the calibrator stays lower case.
  std::string name = row.precision;
  std::transform(name.begin(),
                 name.begin() + static_cast<std::ptrdiff_t>(name.find(' ') == std::string::npos
                                                                ? name.size()
                                                                : name.find(' ')),
                 name.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  // FP32 on the GPU is built with TF32 off, so it is comparable with PyTorch's FP32.
  if (row.precision == "fp32" && row.device == "gpu") name += " (TF32 off)";
  return name;
}

const EvalRow* fp32_row(const EvalReport& report) {
  for (const EvalRow& row : report.rows)
    if (row.precision == "fp32") return &row;
  return nullptr;
}

}  // namespace

double EvalRow::top1_percent() const {
  return total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

std::string markdown_table(const EvalReport& report) {
  const EvalRow* base = fp32_row(report);
  std::string out =
      cat("Top-1 of ", report.model, " on ", report.dataset, " (", report.split, " split)\n\n");
  out += "| precision | device | top-1 % | correct/total | delta vs FP32 (points) |\n";
  out += "|---|---|---:|---:|---:|\n";
  for (const EvalRow& row : report.rows) {
    const std::string delta =
        base ? format("%+.2f", row.top1_percent() - base->top1_percent()) : std::string("-");
    out += cat("| ", label(row), " | ", row.device == "gpu" ? "GPU" : "CPU reference", " | ",
               format("%.2f", row.top1_percent()), " | ", row.correct, "/", row.total, " | ", delta,
               " |\n");
  }
  out += "\n";
  for (const EvalRow& row : report.rows) {
    out += cat(label(row), ": ", format("%.0f", row.images_per_second), " images/s");
    if (row.device == "gpu")
      out += cat(", plan built in ", format("%.1f", row.build_seconds), " s");
    out += "\n";
  }
  for (const std::string& note : report.notes)
    out += note + "\n";
  return out;
}

void write_eval_json(const EvalReport& report, const std::string& path) {
  const EvalRow* base = fp32_row(report);
  nlohmann::json rows = nlohmann::json::array();
  for (const EvalRow& row : report.rows) {
    nlohmann::json r = {{"precision", row.precision},
                        {"device", row.device},
                        {"top1_percent", row.top1_percent()},
                        {"correct", row.correct},
                        {"total", row.total},
                        {"build_seconds", row.build_seconds},
                        {"images_per_second", row.images_per_second}};
    r["delta_vs_fp32_points"] =
        base ? nlohmann::json(row.top1_percent() - base->top1_percent()) : nlohmann::json();
    rows.push_back(std::move(r));
  }
  const nlohmann::json doc = {{"model", report.model},
                              {"dataset", report.dataset},
                              {"split", report.split},
                              {"results", rows},
                              {"notes", report.notes}};
  std::ofstream out(path);
  out << doc.dump(2) << "\n";
  if (!out) fail(ErrorKind::kIo, path, ": cannot write the JSON report");
}

}  // namespace anvil::cli
