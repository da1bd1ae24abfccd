#include "pipeline/cpu_executor.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

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
    std::map<std::string, Tensor> inputs;
    inputs[graph_->inputs[0]->name] = input_tensor(batch);
    std::vector<Tensor> outputs = runtime_.run(inputs);
    const Tensor& out = outputs.at(0);
    if (out.element_count() != batch.batch_size * info_.output_elements)
      fail(ErrorKind::kInternal, "the model gave ", out.element_count(), " outputs for ",
           batch.batch_size, " images of ", info_.output_elements);
    write_result(out.values<float>(), batch.batch_size, result);
  }

 private:
  Tensor input_tensor(const Batch& batch) const {
    Extents extents{batch.batch_size};
    extents.insert(extents.end(), info_.image_dims.begin(), info_.image_dims.end());
    Tensor t(DType::kFloat32, std::move(extents));
    float* dst = t.data<float>();
    if (batch.format == InputFormat::kFloat32Nchw) {
      const std::span<const float> pixels = batch.float_pixels();
      std::copy(pixels.begin(), pixels.end(), dst);
      return t;
    }
    const std::int64_t h = info_.image_dims[1], w = info_.image_dims[2];
    const auto image = static_cast<std::size_t>(3 * h * w);
    for (std::size_t i = 0; i < static_cast<std::size_t>(batch.batch_size); ++i)
      normalize_uint8_image(batch.byte_pixels().subspan(i * image, image), h, w, options_.mean,
                            options_.stddev, std::span(dst + i * image, image));
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
