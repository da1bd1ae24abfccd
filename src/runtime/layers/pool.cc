// "pool" (MaxPool / AveragePool 2-D), "global_avg_pool" and
// "global_avg_pool_int8", NHWC.
#include <cmath>
#include <optional>

#include "anvil/error.h"
#include "cuda/kernels/pooling.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

namespace {

class PreparedPool final : public PreparedLayer {
 public:
  PreparedPool(cuda::kernels::Pool2d pool, bool max, cuda::kernels::StorageType type)
      : pool_(pool), max_(max), type_(type) {}

  void enqueue(const LaunchArgs& a) const override {
    if (max_)
      cuda::kernels::max_pool_2d(a.inputs[0], a.outputs[0], type_, pool_, a.stream);
    else
      cuda::kernels::average_pool_2d(a.inputs[0], a.outputs[0], type_, pool_, a.stream);
  }

 private:
  cuda::kernels::Pool2d pool_;
  bool max_;
  cuda::kernels::StorageType type_;
};

class PoolRunner final : public LayerRunner {
 public:
  explicit PoolRunner(const LayerSetup& s) : type_(storage_type(s.fp16)) {
    const std::string& name = s.layer.name;
    const auto& p = s.params;
    auto i = [&](const char* key) { return param<int>(p, key, name); };
    max_ = param<std::string>(p, "mode", name) == "max";
    pool_.c = param<std::int64_t>(p, "c_pad", name);
    pool_.in_h = param<std::int64_t>(p, "in_h", name);
    pool_.in_w = param<std::int64_t>(p, "in_w", name);
    pool_.out_h = param<std::int64_t>(p, "out_h", name);
    pool_.out_w = param<std::int64_t>(p, "out_w", name);
    pool_.kernel_h = i("kernel_h");
    pool_.kernel_w = i("kernel_w");
    pool_.stride_h = i("stride_h");
    pool_.stride_w = i("stride_w");
    pool_.pad_top = i("pad_top");
    pool_.pad_left = i("pad_left");
    pool_.pad_bottom = i("pad_bottom");
    pool_.pad_right = i("pad_right");
    pool_.dilation_h = i("dil_h");
    pool_.dilation_w = i("dil_w");
    pool_.count_include_pad = param<bool>(p, "count_include_pad", name);
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    cuda::kernels::Pool2d pool = pool_;
    pool.n = batch;
    return std::make_unique<PreparedPool>(pool, max_, type_);
  }

 private:
  cuda::kernels::Pool2d pool_;
  bool max_ = true;
  cuda::kernels::StorageType type_;
};

// FP16 or FP32 storage; or, with an INT8 scale, an INT8 input into FP16.
class PreparedGlobalAvgPool final : public PreparedLayer {
 public:
  PreparedGlobalAvgPool(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                        cuda::kernels::StorageType type, std::optional<float> int8_scale)
      : n_(n), h_(h), w_(w), c_(c), type_(type), int8_scale_(int8_scale) {}

  void enqueue(const LaunchArgs& a) const override {
    if (int8_scale_)
      cuda::kernels::global_average_pool_int8(a.inputs[0], a.outputs[0], n_, h_, w_, c_,
                                              *int8_scale_, a.stream);
    else
      cuda::kernels::global_average_pool(a.inputs[0], a.outputs[0], type_, n_, h_, w_, c_,
                                         a.stream);
  }

 private:
  std::int64_t n_, h_, w_, c_;
  cuda::kernels::StorageType type_;
  std::optional<float> int8_scale_;
};

// "global_avg_pool" and "global_avg_pool_int8" (builder/lower.h).
class GlobalAvgPoolRunner final : public LayerRunner {
 public:
  explicit GlobalAvgPoolRunner(const LayerSetup& s)
      : h_(param<std::int64_t>(s.params, "h", s.layer.name)),
        w_(param<std::int64_t>(s.params, "w", s.layer.name)),
        c_(param<std::int64_t>(s.params, "c_pad", s.layer.name)),
        type_(storage_type(s.fp16)) {
    if (s.layer.kind != "global_avg_pool_int8") return;
    check_one_in_one_out(s, DType::kInt8, DType::kFloat16);
    int8_scale_ = param<float>(s.params, "scale", s.layer.name);
    if (!s.fp16 || !(*int8_scale_ > 0.0f) || !std::isfinite(*int8_scale_))
      fail(ErrorKind::kInvalidArgument, "plan layer '", s.layer.name,
           "' (global_avg_pool_int8): needs an FP16 plan and a positive finite scale, has ",
           s.fp16 ? "FP16" : "FP32", " and ", *int8_scale_);
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    return std::make_unique<PreparedGlobalAvgPool>(batch, h_, w_, c_, type_, int8_scale_);
  }

 private:
  std::int64_t h_, w_, c_;
  cuda::kernels::StorageType type_;
  std::optional<float> int8_scale_;
};

std::unique_ptr<LayerRunner> make_pool(const LayerSetup& s) {
  return std::make_unique<PoolRunner>(s);
}
std::unique_ptr<LayerRunner> make_global_avg_pool(const LayerSetup& s) {
  return std::make_unique<GlobalAvgPoolRunner>(s);
}
std::unique_ptr<LayerRunner> make_global_avg_pool_int8(const LayerSetup& s) {
  return std::make_unique<GlobalAvgPoolRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("pool", make_pool);
ANVIL_REGISTER_LAYER("global_avg_pool", make_global_avg_pool);
ANVIL_REGISTER_LAYER("global_avg_pool_int8", make_global_avg_pool_int8);

}  // namespace anvil::runtime
