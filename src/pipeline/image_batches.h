// Classifying a folder of image files through a Pipeline: loading on host
// threads, grouping the images that loaded into batches the model accepts,
// and handing back one outcome per file in file order, whatever order the
// batches finish in. `anvil classify` prints these outcomes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "anvil/pipeline.h"

namespace anvil::pipeline {

// The JPEG and PNG files (by extension, any case) directly in `dir`, sorted
// by name. kIo when `dir` is not a directory.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir);

// The batch size to submit: `requested` clamped to what the model accepts
// (a fixed-batch model gets its own batch).
std::int64_t choose_batch_size(std::int64_t requested, const ExecutorModelInfo& model);

// Turns one file into the model's per-image floats (image_dims elements);
// throws (an Error naming the file and why) for an unreadable one.
using ImageLoader = std::function<std::vector<float>(const std::filesystem::path&)>;

// What became of one file.
struct ImageOutcome {
  std::size_t index = 0;  // in the file list
  std::filesystem::path file;
  std::string error;  // empty on success
  std::vector<Classification> top_k;
};

struct ClassifyFilesOptions {
  std::int64_t batch = 8;  // images per request, clamped by choose_batch_size
  int loader_threads = 4;  // files loaded at once, ahead of the batch being filled
};

struct ClassifyCounts {
  std::size_t succeeded = 0;
  std::size_t failed = 0;
  std::size_t batches = 0;  // requests submitted
};

// Loads every file with `load`, submits the images that loaded in batches
// (the last one padded with repeats of its last image where the model needs
// a bigger batch; padded results are dropped), and calls `on_outcome` once
// per file, in file order, on the calling thread. A file that fails to load,
// or whose batch fails in the pipeline, gets an outcome with `error` set; the
// others still run. The pipeline must use OutputMode::kTopK.
ClassifyCounts classify_files(Pipeline& pipeline, const std::vector<std::filesystem::path>& files,
                              const ImageLoader& load, const ClassifyFilesOptions& options,
                              const std::function<void(const ImageOutcome&)>& on_outcome);

}  // namespace anvil::pipeline
