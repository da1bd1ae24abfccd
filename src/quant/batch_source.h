// Where post-training calibration gets its data: a sequence of batches, each
// a tensor per graph input, all of one declared shape (the shape goes into
// the calibration cache's fingerprint, see calibrate.h).
//
// Sources: .npy files (one batch per file), a folder of images (decoded and
// preprocessed as ImageNet at the model's input size), tensors already in
// memory, and seeded random data (for tests and smoke runs only: random
// inputs calibrate nothing real, so no tool uses it unless asked).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace anvil::quant {

// One batch: graph input name -> tensor.
using Batch = std::map<std::string, Tensor>;

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // How many batches batch() serves.
  virtual std::size_t size() const = 0;
  // The shape of every full batch, per graph input name. A source may end
  // with one smaller batch (images); it never serves a larger one.
  virtual std::map<std::string, Extents> shapes() const = 0;
  // Batch `index` (< size()). Errors name the file at fault.
  virtual Batch batch(std::size_t index) = 0;
};

// The one float32 input of `graph`: the npy and image sources feed models
// with exactly one input. kUnsupported otherwise, naming the inputs.
const ir::Value& single_float_input(const ir::Graph& graph);

// The .npy files of `paths` in order: a folder stands for its *.npy files
// sorted by name, a file for itself. A missing path or a folder without .npy
// files is kInvalidArgument naming it.
std::vector<std::filesystem::path> list_npy_files(const std::vector<std::filesystem::path>& paths);

// Each .npy file is one batch for `input`: its rank and every known dimension
// of the input must match, and every file must have the first file's shape
// and the input's dtype (float64 files are read as float32). The first file
// is read at construction to fix the shape; a later file that differs is
// kInvalidArgument naming it when its batch is read.
class NpyBatchSource final : public BatchSource {
 public:
  NpyBatchSource(const ir::Value& input, std::vector<std::filesystem::path> files);
  std::size_t size() const override { return files_.size(); }
  std::map<std::string, Extents> shapes() const override { return {{name_, shape_}}; }
  Batch batch(std::size_t index) override;

 private:
  Tensor read_checked(const std::filesystem::path& file) const;

  std::string name_;
  DType dtype_;
  ir::Shape model_shape_;
  std::vector<std::filesystem::path> files_;
  Extents shape_;  // of the first file
  Tensor first_;   // kept so that batch(0) does not read it twice
};

// The JPEG and PNG files of `dir` (by extension, sorted by name), decoded and
// preprocessed with io::preprocess_imagenet to the H x W of `input`, which
// must be float32 [N,3,H,W] with H and W known. `batch` images per batch; the
// last batch may be smaller when N is symbolic, and is left out when N is
// fixed (then `batch` must equal N). A file that fails to decode is an error
// naming it: calibration data should be clean, not silently thinned.
class ImageBatchSource final : public BatchSource {
 public:
  ImageBatchSource(const ir::Value& input, const std::filesystem::path& dir, std::int64_t batch);
  std::size_t size() const override;
  std::map<std::string, Extents> shapes() const override;
  Batch batch(std::size_t index) override;
  // Images listed but left out (the incomplete last batch of a fixed-N model).
  std::size_t images_left_out() const;

 private:
  std::string name_;
  std::int64_t batch_;
  int height_ = 0;
  int width_ = 0;
  bool fixed_batch_ = false;
  std::vector<std::filesystem::path> files_;
};

// Batches given in memory, served in order; shapes() is the first batch's.
class TensorBatchSource final : public BatchSource {
 public:
  explicit TensorBatchSource(std::vector<Batch> batches);
  std::size_t size() const override { return batches_.size(); }
  std::map<std::string, Extents> shapes() const override;
  Batch batch(std::size_t index) override { return batches_.at(index); }

 private:
  std::vector<Batch> batches_;
};

// `count` batches of N(0, 1) float32 data for every input of `graph`, symbolic
// dimensions set to `batch`; batch i is a function of (seed, i) only. For
// tests and smoke runs: never a substitute for real calibration data.
class RandomBatchSource final : public BatchSource {
 public:
  RandomBatchSource(const ir::Graph& graph, std::size_t count, std::int64_t batch = 1,
                    unsigned seed = 0);
  std::size_t size() const override { return count_; }
  std::map<std::string, Extents> shapes() const override { return shapes_; }
  Batch batch(std::size_t index) override;

 private:
  std::size_t count_;
  unsigned seed_;
  std::map<std::string, Extents> shapes_;
};

}  // namespace anvil::quant
