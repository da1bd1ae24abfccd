#include "quant/calibrator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include "anvil/error.h"

namespace anvil::quant {

namespace {

// Shortest text that reads back as the same double, for signatures.
std::string shortest(double value) {
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general);
  return std::string(buffer, result.ptr);
}

void check_not_empty(const Histogram& histogram, std::string_view calibrator) {
  if (histogram.empty())
    fail(ErrorKind::kInvalidArgument, calibrator,
         " calibration of an empty histogram: no calibration batch was added for this tensor");
}

float cap_at_max(double amax, const Histogram& histogram) {
  return static_cast<float>(std::min(amax, static_cast<double>(histogram.max_abs())));
}

// P for candidate i: the first i bins, with every count beyond them added to
// the last one.
void reference_distribution(std::span<const double> counts, std::size_t i, double outliers,
                            std::vector<double>& p) {
  p.assign(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(i));
  p[i - 1] += outliers;
}

// Q for candidate i: counts[0:i] (without the outliers) merged into `levels`
// groups and spread back evenly over the bins where P is non-zero; a bin that
// P needs but Q left empty gets `epsilon`.
void candidate_distribution(std::span<const double> counts, std::span<const double> p,
                            std::size_t levels, double epsilon, std::vector<double>& q) {
  const std::size_t i = p.size();
  q.assign(i, 0.0);
  for (std::size_t g = 0; g < levels; ++g) {
    const std::size_t lo = g * i / levels;
    const std::size_t hi = (g + 1) * i / levels;
    double group_sum = 0.0;
    std::size_t nonzero = 0;
    for (std::size_t j = lo; j < hi; ++j) {
      group_sum += counts[j];
      if (p[j] != 0.0) ++nonzero;
    }
    if (nonzero == 0) continue;
    for (std::size_t j = lo; j < hi; ++j)
      if (p[j] != 0.0) q[j] = group_sum / static_cast<double>(nonzero);
  }
  for (std::size_t j = 0; j < i; ++j)
    if (p[j] != 0.0 && q[j] == 0.0) q[j] = epsilon;
}

// KL(P||Q) of the normalized distributions; +inf when P is all zero.
double kl_divergence(std::span<const double> p, std::span<const double> q) {
  double sum_p = 0.0;
  double sum_q = 0.0;
  for (std::size_t j = 0; j < p.size(); ++j) {
    sum_p += p[j];
    sum_q += q[j];
  }
  if (sum_p == 0.0 || sum_q == 0.0) return std::numeric_limits<double>::infinity();
  double kl = 0.0;
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (p[j] == 0.0) continue;
    const double pj = p[j] / sum_p;
    kl += pj * std::log(pj / (q[j] / sum_q));
  }
  return kl;
}

}  // namespace

float int8_scale(float amax) {
  return amax > 0.0f ? amax / 127.0f : 1.0f;
}

float MinMaxCalibrator::compute_amax(const Histogram& histogram) const {
  check_not_empty(histogram, name());
  return histogram.max_abs();
}

PercentileCalibrator::PercentileCalibrator(double percentile) : percentile_(percentile) {
  if (!(percentile > 0.0 && percentile <= 100.0))
    fail(ErrorKind::kInvalidArgument, "percentile calibration: the percentile (", percentile,
         ") must be in (0, 100]");
}

std::string PercentileCalibrator::signature() const {
  return "percentile p=" + shortest(percentile_);
}

float PercentileCalibrator::compute_amax(const Histogram& histogram) const {
  check_not_empty(histogram, name());
  // The slack keeps decimal percentiles exact: 99.9 is not a double, yet
  // 999 of 1000 values must be enough for it.
  const double total = static_cast<double>(histogram.total_count());
  const double target = percentile_ * total / 100.0 * (1.0 - 1e-12);
  const auto counts = histogram.counts();
  std::uint64_t cumulative = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    cumulative += counts[k];
    if (static_cast<double>(cumulative) >= target)
      return cap_at_max(static_cast<double>(k + 1) * histogram.bin_width(), histogram);
  }
  return histogram.max_abs();
}

EntropyCalibrator::EntropyCalibrator(EntropyOptions options) : options_(options) {
  if (options_.levels < 2 || !(options_.epsilon > 0.0))
    fail(ErrorKind::kInvalidArgument, "entropy calibration: need levels >= 2 (got ",
         options_.levels, ") and epsilon > 0 (got ", options_.epsilon, ")");
}

std::string EntropyCalibrator::signature() const {
  return cat("entropy levels=", options_.levels, " epsilon=", shortest(options_.epsilon),
             " flatten_zero_bin=", options_.flatten_zero_bin ? 1 : 0);
}

float EntropyCalibrator::compute_amax(const Histogram& histogram) const {
  check_not_empty(histogram, name());
  if (histogram.max_abs() == 0.0f) return 0.0f;
  const auto levels = static_cast<std::size_t>(options_.levels);
  const auto n = static_cast<std::size_t>(histogram.num_bins());
  if (n < levels)
    fail(ErrorKind::kInvalidArgument, "entropy calibration needs at least ", levels,
         " histogram bins, the histogram has ", n);

  std::vector<double> counts(histogram.counts().begin(), histogram.counts().end());
  if (options_.flatten_zero_bin) counts[0] = counts[1];
  std::vector<double> suffix(n + 1, 0.0);
  for (std::size_t k = n; k-- > 0;)
    suffix[k] = suffix[k + 1] + counts[k];

  std::size_t best_i = 0;
  double best_kl = std::numeric_limits<double>::infinity();
  std::vector<double> p;
  std::vector<double> q;
  for (std::size_t i = levels; i <= n; ++i) {
    reference_distribution(counts, i, suffix[i], p);
    candidate_distribution(counts, p, levels, options_.epsilon, q);
    const double kl = kl_divergence(p, q);
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  if (best_i == 0) return histogram.max_abs();
  return cap_at_max((static_cast<double>(best_i) + 0.5) * histogram.bin_width(), histogram);
}

std::unique_ptr<Calibrator> make_calibrator(std::string_view name,
                                            const CalibratorOptions& options) {
  if (name == "entropy") return std::make_unique<EntropyCalibrator>(options.entropy);
  if (name == "minmax") return std::make_unique<MinMaxCalibrator>();
  if (name == "percentile") return std::make_unique<PercentileCalibrator>(options.percentile);
  fail(ErrorKind::kInvalidArgument, "unknown calibrator '", name,
       "' (choose entropy, minmax or percentile)");
}

}  // namespace anvil::quant
