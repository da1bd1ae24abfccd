// A labeled image dataset split as python/make_digits.py writes it
// (scikit-learn's digits), and its top-1 accuracy through a Pipeline: what
// `anvil eval --dataset DIR` measures.
//
// DIR/SPLIT_images.npy holds uint8 [N, S, S] gray images (S = 8 for digits,
// already scaled to 0..255) and DIR/SPLIT_labels.npy int64 [N] classes. The
// model sees each image enlarged by nearest neighbour to its input size (every
// pixel a block of F x F, F = input side / S: 28 for 224) with the gray copied
// to R, G and B, then ImageNet-normalized by the pipeline's uint8 path:
// exactly the pixels python/train_digits.py trains on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "anvil/pipeline.h"

namespace anvil::io {

struct DigitsSplit {
  std::int64_t count = 0;            // images
  std::int64_t side = 0;             // each is side x side
  std::vector<std::uint8_t> pixels;  // count x side x side, row-major
  std::vector<std::int64_t> labels;  // count, each in [0, classes)
};

// Reads DIR/SPLIT_images.npy and DIR/SPLIT_labels.npy. Errors name the file:
// kIo when missing; kInvalidArgument for a truncated file, another dtype
// (uint8 and int64 are needed), another shape ([N, S, S] and [N]), label and
// image counts that differ, or a label outside [0, classes).
DigitsSplit read_digits_split(const std::filesystem::path& dir, std::string_view split,
                              std::int64_t classes);

// Enlarges one side x side gray image into `out`, (side * factor)^2 x 3 RGB
// bytes (H x W x 3): pixel (y, x) of `out` is gray (y / factor, x / factor).
void upscale_digit(std::span<const std::uint8_t> gray, std::int64_t side, std::int64_t factor,
                   std::span<std::uint8_t> out);

// Images [first, first + count) of `split` enlarged to out_side x out_side
// (a multiple of split.side) as one kUint8Nhwc batch of `batch_size` images:
// where batch_size > count, the last image repeats (a fixed-batch model).
Batch digits_batch(const DigitsSplit& split, std::int64_t first, std::int64_t count,
                   std::int64_t batch_size, std::int64_t out_side);

struct Top1Count {
  std::int64_t correct = 0;
  std::int64_t total = 0;
};

// Runs every image of `split` through `pipeline` (OutputMode::kTopK) in
// batches of up to `batch` (clamped to what the model accepts) and counts the
// images whose best class is their label. The model's input must be
// [N, 3, H, H], H a multiple of split.side (kUnsupported otherwise).
Top1Count count_top1(Pipeline& pipeline, const DigitsSplit& split, std::int64_t batch);

}  // namespace anvil::io
