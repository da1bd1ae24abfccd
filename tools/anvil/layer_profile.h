// anvil run --dump-profile: per-layer GPU times gathered by a Profiler over
// several profiled enqueues, printed as a table (mean time and share per
// layer), like trtexec's --dumpProfile.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "anvil/engine.h"

namespace anvil::cli {

class LayerProfile final : public Profiler {
 public:
  void report_layer_time(std::string_view layer, std::string_view kind, float ms) override;
  // Writes the table: one row per layer in execution order, then the total.
  void print(std::FILE* out) const;

  struct Row {
    std::string layer, kind;
    double total_ms = 0;
    int count = 0;
    double mean_ms() const { return count ? total_ms / count : 0.0; }
  };
  // One row per layer, in execution order.
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::vector<Row> rows_;                               // in first-report order
  std::unordered_map<std::string, std::size_t> index_;  // layer name -> row
};

}  // namespace anvil::cli
