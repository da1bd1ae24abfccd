// The dataset folder `anvil eval` reads (src/io/digits_dataset.h): good
// files load as written; every malformed one is an error naming that file;
// the nearest-neighbour upscaling gives the pixels python/train_digits.py
// trains on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "io/digits_dataset.h"
#include "io/npy.h"
#include "io/scratch_dir.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

// A fresh folder per call (ctest runs this binary's tests as parallel
// processes), removed when the process exits.
fs::path temp_dir() {
  static std::vector<std::unique_ptr<io::ScratchDir>> dirs;
  return dirs.emplace_back(std::make_unique<io::ScratchDir>("anvil_eval_dataset_test"))->path();
}

Tensor images(std::int64_t n, std::int64_t side) {
  Tensor t(DType::kUInt8, {n, side, side});
  for (std::int64_t i = 0; i < t.element_count(); ++i)
    t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7 % 256);
  return t;
}

Tensor labels(std::initializer_list<std::int64_t> values) {
  return Tensor::from<std::int64_t>({static_cast<std::int64_t>(values.size())}, values);
}

// Writes test_images.npy and test_labels.npy.
fs::path write_split(const Tensor& pixels, const Tensor& classes) {
  const fs::path dir = temp_dir();
  io::write_npy(dir / "test_images.npy", pixels);
  io::write_npy(dir / "test_labels.npy", classes);
  return dir;
}

// The error read_digits_split throws, checked to name `file` and to say `why`.
void expect_error(const fs::path& dir, const std::string& file, const std::string& why,
                  ErrorKind kind = ErrorKind::kInvalidArgument) {
  try {
    io::read_digits_split(dir, "test", 10);
    ADD_FAILURE() << "no error; expected one naming " << file;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / file).string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST(EvalDataset, ReadsWhatWasWritten) {
  const fs::path dir = write_split(images(3, 8), labels({0, 9, 4}));
  const io::DigitsSplit split = io::read_digits_split(dir, "test", 10);
  EXPECT_EQ(split.count, 3);
  EXPECT_EQ(split.side, 8);
  ASSERT_EQ(split.pixels.size(), 3u * 64u);
  EXPECT_EQ(split.pixels[100], static_cast<std::uint8_t>(100 * 7 % 256));
  EXPECT_EQ(split.labels, (std::vector<std::int64_t>{0, 9, 4}));
}

TEST(EvalDataset, MissingFolderOrFileIsNamed) {
  try {
    io::read_digits_split(temp_dir() / "nowhere", "test", 10);
    ADD_FAILURE() << "no error for a missing folder";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
  const fs::path dir = write_split(images(2, 8), labels({1, 2}));
  fs::remove(dir / "test_labels.npy");
  expect_error(dir, "test_labels.npy", "no such file", ErrorKind::kIo);
}

TEST(EvalDataset, TruncatedFileIsNamed) {
  const fs::path dir = write_split(images(4, 8), labels({1, 2, 3, 4}));
  fs::resize_file(dir / "test_images.npy", fs::file_size(dir / "test_images.npy") - 5);
  expect_error(dir, "test_images.npy", "data bytes");
}

TEST(EvalDataset, WrongDtypesAreNamed) {
  Tensor float_pixels(DType::kFloat32, {2, 8, 8});
  expect_error(write_split(float_pixels, labels({1, 2})), "test_images.npy", "float32");
  const Tensor int32_labels = Tensor::from<std::int32_t>({2}, {1, 2});
  expect_error(write_split(images(2, 8), int32_labels), "test_labels.npy", "int32");
}

TEST(EvalDataset, WrongShapesAreNamed) {
  expect_error(write_split(images(2, 8).reshaped({2, 64}), labels({1, 2})), "test_images.npy",
               "[N, S, S]");
  expect_error(write_split(images(2, 8).reshaped({2, 4, 16}), labels({1, 2})), "test_images.npy",
               "[N, S, S]");
  const Tensor label_matrix = Tensor::from<std::int64_t>({2, 1}, {1, 2});
  expect_error(write_split(images(2, 8), label_matrix), "test_labels.npy", "[N]");
}

TEST(EvalDataset, LabelCountMismatchIsNamed) {
  expect_error(write_split(images(3, 8), labels({1, 2})), "test_labels.npy", "holds 2 labels");
}

TEST(EvalDataset, LabelOutOfRangeIsNamed) {
  expect_error(write_split(images(3, 8), labels({1, 10, 2})), "test_labels.npy",
               "label 10 of image 1");
  expect_error(write_split(images(2, 8), labels({-1, 2})), "test_labels.npy", "label -1");
}

TEST(EvalUpscale, EveryPixelIsItsBlocksSource) {
  // A 3x3 image of distinct values, enlarged 4x: pixel (y, x) of the 12x12
  // RGB result is source (y / 4, x / 4) in all three channels.
  const std::vector<std::uint8_t> gray{10, 20, 30, 40, 50, 60, 70, 80, 255};
  std::vector<std::uint8_t> rgb(12 * 12 * 3, 0);
  io::upscale_digit(gray, 3, 4, rgb);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 12; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(rgb[static_cast<std::size_t>((y * 12 + x) * 3 + c)],
                  gray[static_cast<std::size_t>(y / 4 * 3 + x / 4)])
            << "pixel (" << y << ", " << x << ") channel " << c;
}

TEST(EvalUpscale, DigitsTo224AreBlocksOf28) {
  std::vector<std::uint8_t> gray(64);
  for (std::size_t i = 0; i < gray.size(); ++i)
    gray[i] = static_cast<std::uint8_t>(i * 4);
  std::vector<std::uint8_t> rgb(224 * 224 * 3);
  io::upscale_digit(gray, 8, 28, rgb);
  // Block edges: the last pixel of one block and the first of the next.
  auto at = [&](int y, int x) { return rgb[static_cast<std::size_t>((y * 224 + x) * 3 + 1)]; };
  EXPECT_EQ(at(0, 27), gray[0]);
  EXPECT_EQ(at(0, 28), gray[1]);
  EXPECT_EQ(at(27, 0), gray[0]);
  EXPECT_EQ(at(28, 0), gray[8]);
  EXPECT_EQ(at(223, 223), gray[63]);
}

TEST(EvalUpscale, BatchPadsWithTheLastImage) {
  io::DigitsSplit split;
  split.count = 3;
  split.side = 2;
  split.pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  split.labels = {0, 1, 2};
  // Images 1 and 2, padded to a batch of 4, enlarged 2x to 4x4x3.
  const Batch batch = io::digits_batch(split, 1, 2, 4, 4);
  EXPECT_EQ(batch.format, InputFormat::kUint8Nhwc);
  ASSERT_EQ(batch.batch_size, 4);
  ASSERT_EQ(batch.nhwc.size(), 4u * 48u);
  EXPECT_EQ(batch.nhwc[0], 5);       // image 1, pixel (0, 0)
  EXPECT_EQ(batch.nhwc[47], 8);      // image 1, pixel (3, 3)
  EXPECT_EQ(batch.nhwc[48], 9);      // image 2
  EXPECT_EQ(batch.nhwc[2 * 48], 9);  // padding repeats image 2
  EXPECT_EQ(batch.nhwc[3 * 48 + 47], 12);
}

}  // namespace
}  // namespace anvil
