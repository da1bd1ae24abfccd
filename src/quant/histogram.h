// The per-tensor histogram of |x| that post-training INT8 calibration collects
// over many batches (TensorRT's approach), from which a Calibrator picks amax.
//
// Binning: `num_bins` equal bins over [0, range]. Bins are closed on the right
// so that the largest value lands in the last bin without clamping:
//   bin 0 = [0, w],  bin k = (k*w, (k+1)*w] for k >= 1,  w = range / num_bins,
// i.e. index = ceil(|x| * num_bins / range) - 1, with |x| == 0 in bin 0.
//
// Range growth: the first batch with a non-zero value sets range = max|x| of
// that batch. When a later batch has a larger max|x|, the range doubles (as
// many times as needed) and each doubling merges bins pairwise (new bin k =
// old bins 2k and 2k+1). With right-closed bins this merge is exact: every
// earlier count lands in the bin it would have had if the larger range had
// been used from the start, so early batches are never lost or smeared. The
// price is resolution: after growth the data may occupy only the lower half of
// the bins (range <= 2 * max_abs()). max_abs() stays the exact observed max.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace anvil::quant {

class Histogram {
 public:
  static constexpr int kDefaultBins = 2048;

  // An empty histogram; `num_bins` must be even and >= 2 (pairwise merging),
  // else kInvalidArgument.
  explicit Histogram(int num_bins = kDefaultBins);

  // A histogram with the given counts (its size is num_bins) over [0, range]
  // and observed max `max_abs` (0 <= max_abs <= range, all finite): for tests
  // and for callers that build histograms elsewhere. Throws kInvalidArgument.
  static Histogram from_counts(std::vector<std::uint64_t> counts, double range, float max_abs);

  // Adds |x| of every value of one batch. A NaN or infinity is an error
  // (kInvalidArgument naming its index in the batch); nothing is added then.
  void add(std::span<const float> values);

  int num_bins() const { return static_cast<int>(counts_.size()); }
  std::span<const std::uint64_t> counts() const { return counts_; }
  // Upper edge of the last bin; 0 while no non-zero value has been seen.
  double range() const { return range_; }
  double bin_width() const { return range_ / static_cast<double>(counts_.size()); }
  // Largest |x| added so far (exact, not rounded to a bin edge).
  float max_abs() const { return max_abs_; }
  std::uint64_t total_count() const { return total_; }
  bool empty() const { return total_ == 0; }

 private:
  void grow_to(float new_max);
  std::size_t bin_of(float abs_value) const;

  std::vector<std::uint64_t> counts_;
  double range_ = 0.0;
  float max_abs_ = 0.0f;
  std::uint64_t total_ = 0;
};

}  // namespace anvil::quant
