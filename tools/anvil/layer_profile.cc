// Needs the GPU engine's headers: compiled only with CUDA.
#if ANVIL_HAVE_CUDA

#include "layer_profile.h"

#include <algorithm>

namespace anvil::cli {

void LayerProfile::report_layer_time(std::string_view layer, std::string_view kind, float ms) {
  // Plan layer names are unique; the first enqueue fixes the row order.
  auto [it, added] = index_.try_emplace(std::string(layer), rows_.size());
  if (added) rows_.push_back({std::string(layer), std::string(kind)});
  Row& row = rows_[it->second];
  row.total_ms += ms;
  ++row.count;
}

void LayerProfile::print(std::FILE* out) const {
  double total = 0;
  for (const Row& r : rows_)
    total += r.mean_ms();
  std::size_t width = 5;
  for (const Row& r : rows_)
    width = std::max(width, r.layer.size());
  const int w = static_cast<int>(width);
  std::fprintf(out, "=== Profile (%d enqueues, mean GPU time per layer) ===\n",
               rows_.empty() ? 0 : rows_.front().count);
  std::fprintf(out, "%-*s  %-15s  %9s  %6s\n", w, "Layer", "Kind", "Time (ms)", "Share");
  for (const Row& r : rows_) {
    const double ms = r.mean_ms();
    std::fprintf(out, "%-*s  %-15s  %9.4f  %5.1f%%\n", w, r.layer.c_str(), r.kind.c_str(), ms,
                 total > 0 ? 100.0 * ms / total : 0.0);
  }
  std::fprintf(out, "%-*s  %-15s  %9.4f  %5.1f%%\n", w, "Total", "", total, 100.0);
}

}  // namespace anvil::cli

#endif  // ANVIL_HAVE_CUDA
