#include "pipeline/image_batches.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <exception>
#include <future>
#include <utility>

namespace anvil::pipeline {

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::int64_t image_elements(const ExecutorModelInfo& model) {
  std::int64_t n = 1;
  for (std::int64_t d : model.image_dims)
    n *= d;
  return n;
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// One file's place in the output order: a load error, or an image of a batch.
struct Entry {
  std::size_t file = 0;
  std::string error;
  std::size_t batch = 0;
  std::int64_t image = 0;
};

// Keeps a window of files loading ahead, fills batches with the images that
// loaded, and emits outcomes strictly in file order.
class FileClassifier {
 public:
  FileClassifier(Pipeline& pipeline, const std::vector<fs::path>& files, const ImageLoader& load,
                 const ClassifyFilesOptions& options,
                 const std::function<void(const ImageOutcome&)>& on_outcome)
      : pipeline_(pipeline),
        files_(files),
        load_(load),
        on_outcome_(on_outcome),
        batch_size_(choose_batch_size(options.batch, pipeline.model_info())),
        min_batch_(pipeline.model_info().min_batch),
        image_elements_(image_elements(pipeline.model_info())),
        lookahead_(static_cast<std::size_t>(std::max(options.loader_threads, 1))),
        // Results held unread beyond this wait for the oldest: bounded memory.
        max_outstanding_(static_cast<std::size_t>(pipeline.options().queue_depth +
                                                  pipeline.options().workers + 1)) {}

  ClassifyCounts run() {
    std::deque<std::future<std::vector<float>>> loading;
    std::size_t next = 0;
    for (std::size_t i = 0; i < files_.size(); ++i) {
      while (next < files_.size() && next < i + lookahead_) {
        loading.push_back(std::async(std::launch::async, load_, files_[next]));
        ++next;
      }
      take(i, loading.front());
      loading.pop_front();
      emit(/*wait=*/false);
    }
    submit_pending();
    emit(/*wait=*/true);
    return counts_;
  }

 private:
  void take(std::size_t file, std::future<std::vector<float>>& loaded) {
    Entry entry;
    entry.file = file;
    try {
      std::vector<float> pixels = loaded.get();
      if (static_cast<std::int64_t>(pixels.size()) != image_elements_)
        fail(ErrorKind::kInternal, files_[file].string(), ": the loader gave ", pixels.size(),
             " values for an image of ", image_elements_);
      pending_.insert(pending_.end(), pixels.begin(), pixels.end());
      entry.batch = counts_.batches;
      entry.image = pending_count_++;
    } catch (...) {
      entry.error = message_of(std::current_exception());
    }
    entries_.push_back(std::move(entry));
    if (pending_count_ == batch_size_) submit_pending();
  }

  void submit_pending() {
    if (pending_count_ == 0) return;
    Batch batch;
    // A fixed-batch model needs a full batch: repeat the last image.
    batch.batch_size = std::max(pending_count_, min_batch_);
    batch.nchw = std::move(pending_);
    for (std::int64_t i = pending_count_; i < batch.batch_size; ++i)
      batch.nchw.insert(batch.nchw.end(), batch.nchw.end() - image_elements_, batch.nchw.end());
    batch.tag = counts_.batches;
    try {
      batches_.push_back(pipeline_.submit(std::move(batch)).share());
    } catch (...) {
      std::promise<Result> failed;
      failed.set_exception(std::current_exception());
      batches_.push_back(failed.get_future().share());
    }
    pending_.clear();
    pending_count_ = 0;
    ++counts_.batches;
  }

  // Emits the leading entries whose outcome is known; with `wait`, waits for
  // every submitted batch.
  void emit(bool wait) {
    while (!entries_.empty()) {
      const Entry& entry = entries_.front();
      ImageOutcome outcome;
      outcome.index = entry.file;
      outcome.file = files_[entry.file];
      outcome.error = entry.error;
      if (entry.error.empty()) {
        if (entry.batch >= first_batch_ + batches_.size()) return;  // still being filled
        while (first_batch_ < entry.batch) {
          batches_.pop_front();
          ++first_batch_;
        }
        const std::shared_future<Result>& result = batches_.front();
        const bool ready = result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
        if (!wait && !ready && batches_.size() <= max_outstanding_) return;
        try {
          const auto top = result.get().image_top_k(entry.image);
          outcome.top_k.assign(top.begin(), top.end());
        } catch (...) {
          outcome.error = message_of(std::current_exception());
        }
      }
      ++(outcome.error.empty() ? counts_.succeeded : counts_.failed);
      entries_.pop_front();
      on_outcome_(outcome);
    }
  }

  Pipeline& pipeline_;
  const std::vector<fs::path>& files_;
  const ImageLoader& load_;
  const std::function<void(const ImageOutcome&)>& on_outcome_;
  const std::int64_t batch_size_;
  const std::int64_t min_batch_;
  const std::int64_t image_elements_;
  const std::size_t lookahead_;
  const std::size_t max_outstanding_;

  std::vector<float> pending_;  // the batch being filled
  std::int64_t pending_count_ = 0;
  std::deque<Entry> entries_;  // not yet emitted, in file order
  std::deque<std::shared_future<Result>> batches_;
  std::size_t first_batch_ = 0;  // the number of batches_.front()
  ClassifyCounts counts_;
};

}  // namespace

std::vector<fs::path> list_image_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(ErrorKind::kIo, dir.string(), ": not a directory");
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && has_image_extension(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return files;
}

std::int64_t choose_batch_size(std::int64_t requested, const ExecutorModelInfo& model) {
  if (requested < 1)
    fail(ErrorKind::kInvalidArgument, "batch size ", requested, " is not positive");
  return std::clamp(requested, model.min_batch, std::max(model.min_batch, model.max_batch));
}

ClassifyCounts classify_files(Pipeline& pipeline, const std::vector<fs::path>& files,
                              const ImageLoader& load, const ClassifyFilesOptions& options,
                              const std::function<void(const ImageOutcome&)>& on_outcome) {
  if (pipeline.options().output != OutputMode::kTopK)
    fail(ErrorKind::kInvalidArgument, "classify_files needs a pipeline with OutputMode::kTopK");
  return FileClassifier(pipeline, files, load, options, on_outcome).run();
}

}  // namespace anvil::pipeline
