// The job `anvil bench --ablation` times, the same for every config: seeded
// random batches (never zeros), and the guide's output processing (softmax,
// argmax, a line per image) on the host.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace anvil {
struct Classification;  // anvil/pipeline.h
}

namespace anvil::cli {

struct AblationData {
  std::int64_t batch = 0;
  std::int64_t channels = 0, height = 0, width = 0;
  std::vector<std::vector<float>> nchw;          // per batch: batch x C x H x W
  std::vector<std::vector<std::uint8_t>> nhwc;   // per batch: batch x H x W x 3 (3 channels only)
  std::vector<std::vector<float>> nhwc_as_nchw;  // nhwc normalized on the host, for the plain run

  std::int64_t image_elements() const { return channels * height * width; }
};

// `batches` batches of FP32 values uniform in [-2, 2] (none exactly 0) and,
// for 3-channel models, as many uint8 RGB batches, all from `seed`.
AblationData make_ablation_data(int batches, std::int64_t batch, std::int64_t channels,
                                std::int64_t height, std::int64_t width, unsigned seed);

// (pixel / 255 - mean) / stddev per channel, NHWC bytes -> NCHW floats, with
// the Pipeline's default ImageNet mean and stddev.
std::vector<float> normalize_nhwc(const std::vector<std::uint8_t>& nhwc, std::int64_t images,
                                  std::int64_t height, std::int64_t width);

// The guide's print_result: softmax over each image's `classes` logits, its
// top class, and a line per image appended to `sink` (not stdout, which would
// time the terminal). Writes each image's top class to `top1`.
void process_output(const float* logits, std::int64_t images, std::int64_t classes,
                    std::string& sink, std::int32_t* top1);

// The same lines from each image's top class and its probability computed on
// the GPU (PipelineOptions::output kTopK, k 1, softmax): the host's share of
// the output processing once the softmax has moved to the GPU.
void process_top1(std::span<const Classification> best, std::string& sink, std::int32_t* top1);

}  // namespace anvil::cli
