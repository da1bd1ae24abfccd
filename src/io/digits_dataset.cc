#include "io/digits_dataset.h"

#include <algorithm>
#include <future>
#include <string>

#include "io/npy.h"
#include "pipeline/image_batches.h"

namespace anvil::io {

namespace {

namespace fs = std::filesystem;

Tensor read_array(const fs::path& file, DType dtype, const char* what) {
  std::error_code ec;
  if (!fs::exists(file, ec))
    fail(ErrorKind::kIo, file.string(),
         ": no such file; a dataset folder holds SPLIT_images.npy and SPLIT_labels.npy "
         "(python/make_digits.py writes one)");
  Tensor t = read_npy(file);
  if (t.dtype() != dtype)
    fail(ErrorKind::kInvalidArgument, file.string(), ": holds ", to_string(t.dtype()), " ", what,
         "; expected ", to_string(dtype));
  return t;
}

}  // namespace

DigitsSplit read_digits_split(const fs::path& dir, std::string_view split, std::int64_t classes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail(ErrorKind::kIo, dir.string(),
         ": no such dataset folder (make one with python/make_digits.py)");
  const fs::path images_file = dir / (std::string(split) + "_images.npy");
  const fs::path labels_file = dir / (std::string(split) + "_labels.npy");
  const Tensor images = read_array(images_file, DType::kUInt8, "pixels");
  const Tensor labels = read_array(labels_file, DType::kInt64, "labels");
  const Extents& ie = images.extents();
  if (ie.size() != 3 || ie[1] != ie[2] || ie[0] < 1 || ie[1] < 1)
    fail(ErrorKind::kInvalidArgument, images_file.string(), ": shape ", to_string(ie),
         "; expected [N, S, S], N >= 1 square gray images");
  if (labels.extents().size() != 1)
    fail(ErrorKind::kInvalidArgument, labels_file.string(), ": shape ", to_string(labels.extents()),
         "; expected [N], one label per image");
  if (labels.extents()[0] != ie[0])
    fail(ErrorKind::kInvalidArgument, labels_file.string(), ": holds ", labels.extents()[0],
         " labels but ", images_file.string(), " holds ", ie[0], " images");

  DigitsSplit out;
  out.count = ie[0];
  out.side = ie[1];
  const auto pixels = images.values<std::uint8_t>();
  out.pixels.assign(pixels.begin(), pixels.end());
  const auto values = labels.values<std::int64_t>();
  out.labels.assign(values.begin(), values.end());
  for (std::size_t i = 0; i < out.labels.size(); ++i)
    if (out.labels[i] < 0 || out.labels[i] >= classes)
      fail(ErrorKind::kInvalidArgument, labels_file.string(), ": label ", out.labels[i],
           " of image ", i, " is outside [0, ", classes, "), the model's classes");
  return out;
}

void upscale_digit(std::span<const std::uint8_t> gray, std::int64_t side, std::int64_t factor,
                   std::span<std::uint8_t> out) {
  const std::int64_t big = side * factor;
  ANVIL_CHECK(static_cast<std::int64_t>(gray.size()) == side * side);
  ANVIL_CHECK(static_cast<std::int64_t>(out.size()) == big * big * 3);
  std::uint8_t* dst = out.data();
  for (std::int64_t y = 0; y < big; ++y) {
    const std::uint8_t* row = gray.data() + (y / factor) * side;
    for (std::int64_t x = 0; x < big; ++x, dst += 3)
      dst[0] = dst[1] = dst[2] = row[x / factor];
  }
}

Batch digits_batch(const DigitsSplit& split, std::int64_t first, std::int64_t count,
                   std::int64_t batch_size, std::int64_t out_side) {
  ANVIL_CHECK(first >= 0 && count >= 1 && first + count <= split.count && batch_size >= count);
  ANVIL_CHECK(split.side > 0 && out_side % split.side == 0);
  const auto gray = static_cast<std::size_t>(split.side * split.side);
  const auto image = static_cast<std::size_t>(out_side * out_side * 3);
  Batch batch;
  batch.batch_size = batch_size;
  batch.format = InputFormat::kUint8Nhwc;
  batch.nhwc.resize(image * static_cast<std::size_t>(batch_size));
  for (std::int64_t i = 0; i < batch_size; ++i) {
    const auto source = static_cast<std::size_t>(first + std::min(i, count - 1));
    upscale_digit(std::span(split.pixels).subspan(source * gray, gray), split.side,
                  out_side / split.side,
                  std::span(batch.nhwc).subspan(static_cast<std::size_t>(i) * image, image));
  }
  return batch;
}

Top1Count count_top1(Pipeline& pipeline, const DigitsSplit& split, std::int64_t batch) {
  const ExecutorModelInfo& model = pipeline.model_info();
  const auto& dims = model.image_dims;
  if (dims.size() != 3 || dims[0] != 3 || dims[1] != dims[2] || split.side < 1 ||
      dims[1] % split.side != 0)
    fail(ErrorKind::kUnsupported, "the model's input image is ",
         to_string(Extents(dims.begin(), dims.end())), "; scoring ", split.side, "x", split.side,
         " images needs [3, H, H] with H a multiple of ", split.side);
  if (pipeline.options().output != OutputMode::kTopK)
    fail(ErrorKind::kInvalidArgument, "count_top1 needs a pipeline with OutputMode::kTopK");
  const std::int64_t size = pipeline::choose_batch_size(batch, model);

  struct Pending {
    std::int64_t first, count;
    std::future<Result> result;
  };
  std::vector<Pending> pending;
  for (std::int64_t first = 0; first < split.count; first += size) {
    const std::int64_t count = std::min(size, split.count - first);
    const std::int64_t padded = std::max(count, model.min_batch);
    pending.push_back(
        {first, count, pipeline.submit(digits_batch(split, first, count, padded, dims[1]))});
  }
  Top1Count top1;
  for (Pending& p : pending) {
    const Result result = p.result.get();
    for (std::int64_t i = 0; i < p.count; ++i)
      if (result.image_top_k(i)[0].class_index ==
          split.labels[static_cast<std::size_t>(p.first + i)])
        ++top1.correct;
    top1.total += p.count;
  }
  return top1;
}

}  // namespace anvil::io
