#include "quant/histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "anvil/error.h"

namespace anvil::quant {

namespace {

void check_bins(std::size_t num_bins) {
  if (num_bins < 2 || num_bins % 2 != 0)
    fail(ErrorKind::kInvalidArgument, "calibration histogram: the number of bins (", num_bins,
         ") must be even and at least 2");
}

}  // namespace

Histogram::Histogram(int num_bins) {
  if (num_bins < 0) fail(ErrorKind::kInvalidArgument, "calibration histogram: negative bin count");
  check_bins(static_cast<std::size_t>(num_bins));
  counts_.assign(static_cast<std::size_t>(num_bins), 0);
}

Histogram Histogram::from_counts(std::vector<std::uint64_t> counts, double range, float max_abs) {
  check_bins(counts.size());
  if (!std::isfinite(range) || !std::isfinite(max_abs) || max_abs < 0.0f ||
      static_cast<double>(max_abs) > range)
    fail(ErrorKind::kInvalidArgument, "calibration histogram: need 0 <= max_abs (", max_abs,
         ") <= range (", range, "), both finite");
  Histogram h(2);
  h.counts_ = std::move(counts);
  h.range_ = range;
  h.max_abs_ = max_abs;
  h.total_ = std::accumulate(h.counts_.begin(), h.counts_.end(), std::uint64_t{0});
  return h;
}

void Histogram::add(std::span<const float> values) {
  float batch_max = 0.0f;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]))
      fail(ErrorKind::kInvalidArgument, "calibration data: value ", i, " of the batch is ",
           values[i], "; calibration needs finite activations");
    batch_max = std::max(batch_max, std::fabs(values[i]));
  }
  if (static_cast<double>(batch_max) > range_) grow_to(batch_max);
  max_abs_ = std::max(max_abs_, batch_max);
  for (float v : values)
    ++counts_[bin_of(std::fabs(v))];
  total_ += values.size();
}

void Histogram::grow_to(float new_max) {
  // Before any non-zero value every count is a zero, which is in bin 0 of
  // whatever range comes next: take the new max as it is.
  if (range_ == 0.0) {
    range_ = new_max;
    return;
  }
  const std::size_t n = counts_.size();
  while (range_ < static_cast<double>(new_max)) {
    for (std::size_t k = 0; k < n / 2; ++k)
      counts_[k] = counts_[2 * k] + counts_[2 * k + 1];
    std::fill(counts_.begin() + static_cast<std::ptrdiff_t>(n / 2), counts_.end(), 0);
    range_ *= 2.0;
  }
}

std::size_t Histogram::bin_of(float abs_value) const {
  if (abs_value == 0.0f || range_ == 0.0) return 0;
  // Multiplying before dividing keeps index(x, 2R) == index(x, R) / 2 exact,
  // which is what makes the pairwise merge in grow_to() lossless.
  const double scaled =
      static_cast<double>(abs_value) * static_cast<double>(counts_.size()) / range_;
  const double index = std::ceil(scaled) - 1.0;
  return std::min(static_cast<std::size_t>(std::max(index, 0.0)), counts_.size() - 1);
}

}  // namespace anvil::quant
