// Post-training INT8 calibrators: each turns the |x| histogram of one tensor
// into amax, the largest magnitude the symmetric INT8 scale (amax / 127) will
// represent; values beyond amax saturate to +-127.
//
// MinMax:     amax = max|x| (Histogram::max_abs(), exact).
// Percentile: amax = the upper edge (k+1)*w of the first bin k whose
//             cumulative count reaches p/100 of the total, capped at max|x|.
//             So at least p% of the calibration values are <= amax, and
//             p = 100 gives the MinMax answer. (The target count is
//             p * total / 100 less a 1e-12 relative slack, so that a decimal p
//             such as 99.9 of 1000 values is met by 999 of them.)
// Entropy:    TensorRT's KL-divergence calibration (GTC 2017, "8-bit Inference
//             with TensorRT"), details in EntropyOptions and calibrator.cc:
//             counts = the histogram's counts, except counts[0] = counts[1]
//             when flatten_zero_bin (the default); then for every candidate
//             number of kept bins i in [levels, num_bins] (inclusive):
//               P = counts[0:i] with the outliers (sum of counts[i:]) added to
//                   P[i-1];
//               Q = counts[0:i] (outliers NOT included) merged into `levels`
//                   groups, group g = bins [floor(g*i/levels),
//                   floor((g+1)*i/levels)), then expanded back: each bin j of
//                   the group with P[j] != 0 gets group_sum / (number of such
//                   bins), bins with P[j] == 0 get 0;
//               smoothing: a bin with P[j] != 0 but Q[j] == 0 gets Q[j] =
//                   epsilon (in count units, before normalizing), so that
//                   KL stays finite but heavily penalizes clipping mass into a
//                   bin Q cannot represent. Bins with P[j] == 0 add nothing to
//                   KL(P||Q), so P itself needs no smoothing;
//               KL(P||Q) = sum_j p_j log(p_j / q_j) with P and Q normalized
//                   to sum 1 (natural log).
//             Candidates whose P is all zero are skipped (none left: max|x|).
//             The smallest i with the minimal KL (first minimum) wins and
//             amax = (i + 0.5) * bin_width, capped at max|x|.
//
// All three return 0 when every value was 0 (max|x| == 0); int8_scale() maps
// that to a usable scale. An empty histogram (no batch added) is an error.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "quant/histogram.h"

namespace anvil::quant {

// The symmetric INT8 scale for `amax`: amax / 127, or 1 when amax == 0 (an
// all-zero tensor: any positive scale represents it exactly).
float int8_scale(float amax);

struct EntropyOptions {
  // Number of quantized magnitude levels: 128 for signed INT8 (127 plus 0).
  int levels = 128;
  // Q's stand-in for an empty bin that P needs, in counts (see above).
  double epsilon = 1e-4;
  // Sets counts[0] = counts[1] before the search, as NVIDIA's
  // pytorch-quantization does: the zero spike of a ReLU output would
  // otherwise dominate KL and drive the threshold down to `levels` bins.
  bool flatten_zero_bin = true;
};

struct CalibratorOptions {
  double percentile = 99.99;  // in (0, 100]
  EntropyOptions entropy;
};

class Calibrator {
 public:
  virtual ~Calibrator() = default;

  // The registry name: "entropy", "minmax" or "percentile".
  virtual std::string_view name() const = 0;
  // The name plus every option that changes the result, e.g.
  // "percentile p=99.99": the calibration cache records it so that a cache
  // made with other settings is not reused.
  virtual std::string signature() const = 0;
  // amax for the tensor whose histogram is `histogram` (see the file comment).
  // Throws kInvalidArgument for an empty histogram.
  virtual float compute_amax(const Histogram& histogram) const = 0;
};

class MinMaxCalibrator final : public Calibrator {
 public:
  std::string_view name() const override { return "minmax"; }
  std::string signature() const override { return "minmax"; }
  float compute_amax(const Histogram& histogram) const override;
};

class PercentileCalibrator final : public Calibrator {
 public:
  // `percentile` must be in (0, 100], else kInvalidArgument.
  explicit PercentileCalibrator(double percentile = 99.99);
  std::string_view name() const override { return "percentile"; }
  std::string signature() const override;
  float compute_amax(const Histogram& histogram) const override;

 private:
  double percentile_;
};

class EntropyCalibrator final : public Calibrator {
 public:
  // levels >= 2 and epsilon > 0, else kInvalidArgument.
  explicit EntropyCalibrator(EntropyOptions options = {});
  std::string_view name() const override { return "entropy"; }
  std::string signature() const override;
  // Also throws kInvalidArgument when the histogram has fewer bins than
  // `levels` (no candidate threshold exists).
  float compute_amax(const Histogram& histogram) const override;

 private:
  EntropyOptions options_;
};

// The calibrator called `name` ("entropy", "minmax" or "percentile"); any
// other name is kInvalidArgument listing the valid ones.
std::unique_ptr<Calibrator> make_calibrator(std::string_view name,
                                            const CalibratorOptions& options = {});

}  // namespace anvil::quant
