// Needs the GPU engine's headers: compiled only with CUDA.
#if ANVIL_HAVE_CUDA

#include "run_trace.h"

#include <string>

#include "io/chrome_trace.h"

namespace anvil::cli {

void write_run_trace(const std::filesystem::path& path, std::int64_t batch,
                     const std::vector<IterationTimes>& iterations, const LayerProfile* profile) {
  constexpr double kUs = 1000.0;  // trace times are microseconds
  io::ChromeTrace trace;
  double end_ms = 0;
  for (std::size_t i = 0; i < iterations.size(); ++i) {
    const IterationTimes& t = iterations[i];
    const std::string n = std::to_string(i);
    const double compute_start = t.gpu_start_ms + t.h2d_ms;
    if (t.h2d_ms > 0) trace.add("GPU: H2D", "H2D " + n, t.gpu_start_ms * kUs, t.h2d_ms * kUs);
    trace.add("GPU: compute", "enqueue " + n, compute_start * kUs, t.compute_ms * kUs,
              {{"batch", batch}});
    if (t.d2h_ms > 0)
      trace.add("GPU: D2H", "D2H " + n, (compute_start + t.compute_ms) * kUs, t.d2h_ms * kUs);
    trace.add("host: enqueue", "enqueue " + n, t.host_start_ms * kUs, t.enqueue_ms * kUs);
    end_ms = std::max(end_ms, t.gpu_start_ms + t.latency_ms);
  }
  if (profile) {
    // After the timed run, on its own row: mean layer times, end to end.
    double at_ms = end_ms;
    for (const LayerProfile::Row& row : profile->rows()) {
      trace.add("GPU: layers (profiled, mean)", row.layer, at_ms * kUs, row.mean_ms() * kUs,
                {{"kind", row.kind}, {"enqueues", row.count}});
      at_ms += row.mean_ms();
    }
  }
  trace.write(path);
}

}  // namespace anvil::cli

#endif  // ANVIL_HAVE_CUDA
