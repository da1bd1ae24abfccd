#include "quant/batch_source.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <span>

#include "anvil/error.h"
#include "io/image.h"
#include "io/npy.h"

namespace anvil::quant {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// Regular files of `dir` whose extension is one of `extensions`, sorted.
std::vector<fs::path> files_with(const fs::path& dir,
                                 std::initializer_list<std::string> extensions) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && std::find(extensions.begin(), extensions.end(),
                                             lower_extension(entry.path())) != extensions.end())
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

bool fits(const ir::Shape& model, const Extents& extents) {
  if (model.rank() != extents.size()) return false;
  for (std::size_t d = 0; d < extents.size(); ++d)
    if (model[d].is_known() && model[d].size != extents[d]) return false;
  return true;
}

}  // namespace

const ir::Value& single_float_input(const ir::Graph& graph) {
  if (graph.inputs.size() != 1 || graph.inputs[0]->dtype != DType::kFloat32) {
    std::string inputs;
    for (const ir::Value* in : graph.inputs)
      inputs += cat(inputs.empty() ? "" : ", ", in->name, " ", to_string(in->dtype));
    fail(ErrorKind::kUnsupported, "calibration from files feeds models with one float32 input; '",
         graph.name, "' has: ", inputs.empty() ? "none" : inputs);
  }
  return *graph.inputs[0];
}

std::vector<fs::path> list_npy_files(const std::vector<fs::path>& paths) {
  std::vector<fs::path> files;
  for (const fs::path& path : paths) {
    if (fs::is_directory(path)) {
      const auto found = files_with(path, {".npy"});
      if (found.empty())
        fail(ErrorKind::kInvalidArgument, path.string(), ": no .npy files in this folder");
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(path)) {
      files.push_back(path);
    } else {
      fail(ErrorKind::kInvalidArgument, path.string(), ": no such file or folder");
    }
  }
  return files;
}

// ---- NpyBatchSource ----------------------------------------------------------

NpyBatchSource::NpyBatchSource(const ir::Value& input, std::vector<fs::path> files)
    : name_(input.name), dtype_(input.dtype), model_shape_(input.shape), files_(std::move(files)) {
  if (files_.empty()) fail(ErrorKind::kInvalidArgument, "calibration: no .npy files given");
  first_ = read_checked(files_[0]);
  shape_ = first_.extents();
}

Tensor NpyBatchSource::read_checked(const fs::path& file) const {
  Tensor t = io::read_npy(file);
  if (t.dtype() != dtype_)
    fail(ErrorKind::kInvalidArgument, file.string(), ": holds ", to_string(t.dtype()),
         " data; input '", name_, "' is ", to_string(dtype_));
  if (!fits(model_shape_, t.extents()))
    fail(ErrorKind::kInvalidArgument, file.string(), ": shape ", to_string(t.extents()),
         " does not fit input '", name_, "' ", to_string(model_shape_),
         " (each .npy file holds one batch)");
  if (!shape_.empty() && t.extents() != shape_)
    fail(ErrorKind::kInvalidArgument, file.string(), ": shape ", to_string(t.extents()),
         " differs from ", to_string(shape_), " of the first file ", files_[0].string(),
         "; every calibration batch must have the same shape");
  return t;
}

Batch NpyBatchSource::batch(std::size_t index) {
  if (index >= files_.size())
    fail(ErrorKind::kInvalidArgument, "calibration batch ", index, " of ", files_.size());
  if (index == 0 && !first_.empty()) {
    Batch b{{name_, std::move(first_)}};
    first_ = Tensor();
    return b;
  }
  return {{name_, read_checked(files_[index])}};
}

// ---- ImageBatchSource --------------------------------------------------------

ImageBatchSource::ImageBatchSource(const ir::Value& input, const fs::path& dir, std::int64_t batch)
    : name_(input.name), batch_(batch) {
  const ir::Shape& s = input.shape;
  if (input.dtype != DType::kFloat32 || s.rank() != 4 || !s[1].is_known() || s[1].size != 3 ||
      !s[2].is_known() || !s[3].is_known())
    fail(ErrorKind::kUnsupported, "calibration from images needs a float32 input [N,3,H,W]; '",
         input.name, "' is ", to_string(input.dtype), " ", to_string(s));
  if (batch < 1) fail(ErrorKind::kInvalidArgument, "calibration: batch size ", batch, " < 1");
  fixed_batch_ = s[0].is_known();
  if (fixed_batch_ && s[0].size != batch)
    fail(ErrorKind::kInvalidArgument, "calibration: batch size ", batch, " but input '", input.name,
         "' has a fixed batch of ", s[0].size);
  height_ = static_cast<int>(s[2].size);
  width_ = static_cast<int>(s[3].size);
  if (!fs::is_directory(dir)) fail(ErrorKind::kInvalidArgument, dir.string(), ": not a folder");
  files_ = files_with(dir, {".jpg", ".jpeg", ".png"});
  if (files_.empty())
    fail(ErrorKind::kInvalidArgument, dir.string(), ": no .jpg, .jpeg or .png files");
  if (size() == 0)
    fail(ErrorKind::kInvalidArgument, dir.string(), ": ", files_.size(),
         " images make no full batch of ", batch);
}

std::size_t ImageBatchSource::size() const {
  const auto n = files_.size(), b = static_cast<std::size_t>(batch_);
  return fixed_batch_ ? n / b : (n + b - 1) / b;
}

std::size_t ImageBatchSource::images_left_out() const {
  return files_.size() - std::min(files_.size(), size() * static_cast<std::size_t>(batch_));
}

std::map<std::string, Extents> ImageBatchSource::shapes() const {
  return {{name_, {batch_, 3, height_, width_}}};
}

Batch ImageBatchSource::batch(std::size_t index) {
  if (index >= size())
    fail(ErrorKind::kInvalidArgument, "calibration batch ", index, " of ", size());
  const std::size_t begin = index * static_cast<std::size_t>(batch_);
  const std::size_t end = std::min(files_.size(), begin + static_cast<std::size_t>(batch_));
  const auto count = static_cast<std::int64_t>(end - begin);
  Tensor t(DType::kFloat32, {count, 3, height_, width_});
  const std::size_t image_floats = 3 * static_cast<std::size_t>(height_) * width_;
  for (std::size_t i = begin; i < end; ++i)
    io::preprocess_imagenet(io::decode_image(files_[i]), height_, width_,
                            t.data<float>() + (i - begin) * image_floats);
  return {{name_, std::move(t)}};
}

// ---- TensorBatchSource, RandomBatchSource -------------------------------------

TensorBatchSource::TensorBatchSource(std::vector<Batch> batches) : batches_(std::move(batches)) {}

std::map<std::string, Extents> TensorBatchSource::shapes() const {
  std::map<std::string, Extents> shapes;
  if (!batches_.empty())
    for (const auto& [name, tensor] : batches_[0])
      shapes[name] = tensor.extents();
  return shapes;
}

RandomBatchSource::RandomBatchSource(const ir::Graph& graph, std::size_t count, std::int64_t batch,
                                     unsigned seed)
    : count_(count), seed_(seed) {
  for (const ir::Value* in : graph.inputs) {
    if (in->dtype != DType::kFloat32)
      fail(ErrorKind::kUnsupported, "random calibration data: input '", in->name, "' is ",
           to_string(in->dtype), ", not float32");
    Extents extents;
    for (const ir::Dim& d : in->shape.dims())
      extents.push_back(d.is_known() ? d.size : batch);
    shapes_[in->name] = extents;
  }
}

Batch RandomBatchSource::batch(std::size_t index) {
  std::seed_seq seq{seed_, static_cast<unsigned>(index), static_cast<unsigned>(index >> 32)};
  std::mt19937 rng(seq);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch b;
  for (const auto& [name, extents] : shapes_) {
    Tensor t(DType::kFloat32, extents);
    for (float& x : std::span<float>(t.data<float>(), static_cast<std::size_t>(t.element_count())))
      x = normal(rng);
    b[name] = std::move(t);
  }
  return b;
}

}  // namespace anvil::quant
