#include "pipeline/cpu_executor.h"

#include <algorithm>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/host_postprocess.h"
#include "reference/reference_runtime.h"

namespace anvil::pipeline {

namespace {

// The per-image dims of `value` ([N, d1, d2, ...] -> {d1, d2, ...}).
std::vector<std::int64_t> per_image_dims(const ir::Value& value, const char* role) {
  if (value.dtype != DType::kFloat32 || value.shape.rank() < 2)
    fail(ErrorKind::kUnsupported, "the pipeline needs an FP32 ", role, " of shape [N, ...]; '",
         value.name, "' is ", to_string(value.dtype), " ", to_string(value.shape));
  std::vector<std::int64_t> dims;
  for (std::size_t d = 1; d < value.shape.rank(); ++d) {
    if (!value.shape[d].is_known())
      fail(ErrorKind::kUnsupported, "the pipeline needs every dim of ", role, " '", value.name,
           "' but the batch known; it is ", to_string(value.shape));
    dims.push_back(value.shape[d].size);
  }
  return dims;
}

ExecutorModelInfo describe(const ir::Graph& graph, std::int64_t max_batch) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1)
    fail(ErrorKind::kUnsupported,
         "the pipeline serves models with one input and one output; "
         "this one has ",
         graph.inputs.size(), " and ", graph.outputs.size());
  ExecutorModelInfo info;
  info.image_dims = per_image_dims(*graph.inputs[0], "input");
  info.output_elements = 1;
  for (std::int64_t d : per_image_dims(*graph.outputs[0], "output"))
    info.output_elements *= d;
  const ir::Dim& batch = graph.inputs[0]->shape[0];
  info.min_batch = batch.is_known() ? batch.size : 1;
  info.max_batch = batch.is_known() ? batch.size : max_batch;
  return info;
}

class CpuExecutor final : public BatchExecutor {
 public:
  CpuExecutor(std::shared_ptr<const ir::Graph> graph, ExecutorModelInfo info,
              const PipelineOptions& options)
      : graph_(std::move(graph)), runtime_(*graph_), info_(std::move(info)), options_(options) {}

  ExecutorModelInfo model_info() const override { return info_; }
  int slots() const override { return 1; }

  // All the work happens in finish(): with one slot there is nothing to overlap.
  void start(int /*slot*/, const Batch& batch) override { batch_ = &batch; }

  void finish(int /*slot*/, Result& result) override {
    ANVIL_CHECK(batch_ != nullptr);
    const Batch& batch = *std::exchange(batch_, nullptr);
    const std::int64_t n = batch.batch_size;
    // Chunks run in turn, as the GPU executor's (nothing to overlap here):
    // the same per-image results either way, and the option means the same
    // on both executors.
    const std::int64_t chunk = options_.chunk_images > 0 ? options_.chunk_images : n;
    const auto classes = static_cast<std::size_t>(info_.output_elements);
    std::vector<float> logits;
    logits.reserve(static_cast<std::size_t>(n) * classes);
    for (std::int64_t first = 0; first < n; first += chunk) {
      const std::int64_t count = std::min(chunk, n - first);
      std::map<std::string, Tensor> inputs;
      inputs[graph_->inputs[0]->name] = input_tensor(batch, first, count);
      std::vector<Tensor> outputs = runtime_.run(inputs);
      const Tensor& out = outputs.at(0);
      if (out.element_count() != count * info_.output_elements)
        fail(ErrorKind::kInternal, "the model gave ", out.element_count(), " outputs for ", count,
             " images of ", info_.output_elements);
      const std::span<const float> values = out.values<float>();
      logits.insert(logits.end(), values.begin(), values.end());
    }
    write_result(logits, n, result);
  }

 private:
  // Images first..first+count of `batch` as the model's input.
  Tensor input_tensor(const Batch& batch, std::int64_t first, std::int64_t count) const {
    Extents extents{count};
    extents.insert(extents.end(), info_.image_dims.begin(), info_.image_dims.end());
    Tensor t(DType::kFloat32, std::move(extents));
    float* dst = t.data<float>();
    std::size_t image = 1;
    for (std::int64_t d : info_.image_dims)
      image *= static_cast<std::size_t>(d);
    const auto offset = static_cast<std::size_t>(first) * image;
    const auto size = static_cast<std::size_t>(count) * image;
    if (batch.format == InputFormat::kFloat32Nchw) {
      const std::span<const float> pixels = batch.float_pixels().subspan(offset, size);
      std::copy(pixels.begin(), pixels.end(), dst);
      return t;
    }
    const std::int64_t h = info_.image_dims[1], w = info_.image_dims[2];
    const bool planar = batch.format == InputFormat::kUint8Nchw;
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
      const auto bytes = batch.byte_pixels().subspan(offset + i * image, image);
      const std::span out(dst + i * image, image);
      if (planar)
        normalize_uint8_planar_image(bytes, h, w, options_.mean, options_.stddev, out);
      else
        normalize_uint8_image(bytes, h, w, options_.mean, options_.stddev, out);
    }
    return t;
  }

  void write_result(std::span<const float> logits, std::int64_t images, Result& result) const {
    const auto n = static_cast<std::size_t>(info_.output_elements);
    if (options_.output == OutputMode::kFullOutput) {
      result.output_elements = info_.output_elements;
      result.output.assign(logits.begin(), logits.end());
      return;
    }
    const auto k = static_cast<std::size_t>(options_.top_k);
    result.k = options_.top_k;
    result.top_k.resize(static_cast<std::size_t>(images) * k);
    std::vector<float> scores(n);
    for (std::size_t i = 0; i < static_cast<std::size_t>(images); ++i) {
      const auto row = logits.subspan(i * n, n);
      std::copy(row.begin(), row.end(), scores.begin());
      if (options_.softmax) softmax_in_place(scores);
      top_k(scores, std::span(result.top_k).subspan(i * k, k));
    }
  }

  std::shared_ptr<const ir::Graph> graph_;
  reference::ReferenceRuntime runtime_;
  ExecutorModelInfo info_;
  PipelineOptions options_;
  const Batch* batch_ = nullptr;  // started, not yet finished
};

}  // namespace

ExecutorFactory cpu_executor_factory(std::shared_ptr<const ir::Graph> graph,
                                     std::int64_t max_batch) {
  if (!graph) fail(ErrorKind::kInvalidArgument, "cpu_executor_factory: no graph");
  if (max_batch < 1)
    fail(ErrorKind::kInvalidArgument, "cpu_executor_factory: max batch must be positive, got ",
         max_batch);
  ExecutorModelInfo info = describe(*graph, max_batch);
  return [graph = std::move(graph), info = std::move(info)](int, const PipelineOptions& options) {
    return std::make_unique<CpuExecutor>(graph, info, options);
  };
}

}  // namespace anvil::pipeline
