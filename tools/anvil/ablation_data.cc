#include "ablation_data.h"

#include <cmath>

#include "anvil/pipeline.h"
#include "result_line.h"

namespace anvil::cli {

namespace {

// splitmix64: fast enough for gigabytes of input (std::normal_distribution
// takes tens of seconds for ten batches of 128 images).
std::uint64_t next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fill_floats(std::vector<float>& v, std::uint64_t state) {
  for (float& x : v) {
    // 24 random bits -> the centre of one of 2^24 equal cells of [-2, 2]:
    // never exactly zero.
    const auto bits = static_cast<double>(next(state) >> 40);
    x = static_cast<float>((bits + 0.5) / 16777216.0 * 4.0 - 2.0);
  }
}

void fill_bytes(std::vector<std::uint8_t>& v, std::uint64_t state) {
  for (std::size_t i = 0; i < v.size(); i += 8) {
    std::uint64_t r = next(state);
    for (std::size_t j = i; j < v.size() && j < i + 8; ++j, r >>= 8)
      v[j] = static_cast<std::uint8_t>(r);
  }
}

}  // namespace

AblationData make_ablation_data(int batches, std::int64_t batch, std::int64_t channels,
                                std::int64_t height, std::int64_t width, unsigned seed) {
  AblationData data;
  data.batch = batch;
  data.channels = channels;
  data.height = height;
  data.width = width;
  const auto values = static_cast<std::size_t>(batch * data.image_elements());
  for (int b = 0; b < batches; ++b) {
    const std::uint64_t state = (std::uint64_t{seed} << 32) ^ static_cast<std::uint64_t>(b);
    fill_floats(data.nchw.emplace_back(values), state);
    if (channels == 3) {
      fill_bytes(data.nhwc.emplace_back(values), ~state);
      data.nhwc_as_nchw.push_back(normalize_nhwc(data.nhwc.back(), batch, height, width));
    }
  }
  return data;
}

std::vector<float> normalize_nhwc(const std::vector<std::uint8_t>& nhwc, std::int64_t images,
                                  std::int64_t height, std::int64_t width) {
  // PipelineOptions' defaults.
  constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
  constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
  const std::int64_t plane = height * width;
  std::vector<float> out(nhwc.size());
  for (std::int64_t n = 0; n < images; ++n)
    for (std::int64_t p = 0; p < plane; ++p)
      for (std::int64_t c = 0; c < 3; ++c) {
        const float pixel = nhwc[static_cast<std::size_t>((n * plane + p) * 3 + c)];
        out[static_cast<std::size_t>((n * 3 + c) * plane + p)] =
            (pixel / 255.0f - kMean[c]) / kStd[c];
      }
  return out;
}

void process_output(const float* logits, std::int64_t images, std::int64_t classes,
                    std::string& sink, std::int32_t* top1) {
  for (std::int64_t n = 0; n < images; ++n) {
    const float* row = logits + n * classes;
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    double sum = 0;
    for (std::int64_t c = 0; c < classes; ++c)
      sum += std::exp(static_cast<double>(row[c] - row[best]));
    append_result_line(sink, n, best, 1.0 / sum);
    top1[n] = static_cast<std::int32_t>(best);
  }
}

void process_top1(std::span<const Classification> best, std::string& sink, std::int32_t* top1) {
  for (std::size_t n = 0; n < best.size(); ++n) {
    append_result_line(sink, static_cast<std::int64_t>(n), best[n].class_index,
                       static_cast<double>(best[n].score));
    top1[n] = static_cast<std::int32_t>(best[n].class_index);
  }
}

}  // namespace anvil::cli
