// The elementwise kernel y = act(a + b) (src/cuda/kernels/activation.h)
// against the CPU reference ops (Add, then the activation op) in NCHW:
// NCHW -> padded NHWC -> kernel -> NCHW; plus flat buffers that are not
// 16-byte aligned (the scalar path) and an in-place run.
#include <ostream>

#include "../unit/op_test_util.h"
#include "cuda/kernels/activation.h"
#include "cuda/kernels/reformat.h"
#include "gpu_test.h"
#include "kernels_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::Activation;
using cuda::kernels::ActivationParams;
using cuda::kernels::ImageShape;
using cuda::kernels::StorageType;
using testing::random_tensor;

// An activation with its parameters, as the GPU kernel and as the ONNX op.
struct ActivationCase {
  const char* name;
  Activation act;
  ActivationParams params;
};

const ActivationCase kActivations[] = {
    {"None", Activation::kNone, {}},
    {"Relu", Activation::kRelu, {}},
    {"Clip", Activation::kClip, {.clip_min = -0.5f, .clip_max = 1.5f}},
    {"LeakyRelu", Activation::kLeakyRelu, {.alpha = 0.1f}},
    {"Sigmoid", Activation::kSigmoid, {}},
    {"HardSigmoid", Activation::kHardSigmoid, {.alpha = 0.3f, .beta = 0.4f}},
    {"HardSwish", Activation::kHardSwish, {}},
};

// act(a + b) (b may be null) by the CPU reference ops.
Tensor cpu_reference(const ActivationCase& ac, const Tensor& a, const Tensor* b) {
  const Tensor sum = b != nullptr ? testing::OpNode("Add", 17, 2).run_one({&a, b}) : a;
  const std::string op = ac.name;
  if (op == "None") return sum;
  if (op == "Clip") {
    const Tensor lo = Tensor::from<float>({}, {ac.params.clip_min});
    const Tensor hi = Tensor::from<float>({}, {ac.params.clip_max});
    return testing::OpNode("Clip", 13, 3).run_one({&sum, &lo, &hi});
  }
  testing::OpNode node(op, 17, 1);
  if (op == "LeakyRelu" || op == "HardSigmoid") node.attr("alpha", ac.params.alpha);
  if (op == "HardSigmoid") node.attr("beta", ac.params.beta);
  return node.run_one(sum);
}

struct EltwiseCase {
  ActivationCase act;
  bool with_b;
  ImageShape shape;
  StorageType type;
};

std::string describe(const EltwiseCase& e) {
  const ImageShape& s = e.shape;
  return cat(e.act.name, e.with_b ? "(a + b)" : "(a)", " x=[", s.n, ",", s.c, ",", s.h, ",", s.w,
             "] c_pad=", s.c_pad);
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const EltwiseCase& e, std::ostream* os) {
  const ImageShape& s = e.shape;
  *os << e.act.name << (e.with_b ? "_ab_" : "_a_") << s.n << "x" << s.c << "x" << s.h << "x" << s.w
      << "_cpad" << s.c_pad << "_" << testing::type_name(e.type);
}

class AddActivation : public ::testing::TestWithParam<EltwiseCase> {};

TEST_P(AddActivation, MatchesTheCpuReference) {
  ANVIL_REQUIRE_GPU();
  const EltwiseCase& e = GetParam();
  const ImageShape& s = e.shape;
  // Within [-3, 3] each, so a + b crosses every activation's breakpoints.
  const Tensor a = random_tensor({s.n, s.c, s.h, s.w}, 21, -3.0f, 3.0f);
  const Tensor b = random_tensor({s.n, s.c, s.h, s.w}, 22, -3.0f, 3.0f);
  const Tensor want = cpu_reference(e.act, a, e.with_b ? &b : nullptr);

  const std::size_t nhwc_count = static_cast<std::size_t>(s.n * s.h * s.w * s.c_pad);
  cuda::Stream stream;
  const cuda::DeviceBuffer a_src = testing::upload(a), b_src = testing::upload(b);
  const cuda::DeviceBuffer a_nhwc = testing::poisoned(nhwc_count, e.type);
  const cuda::DeviceBuffer b_nhwc = testing::poisoned(nhwc_count, e.type);
  const cuda::DeviceBuffer y_nhwc = testing::poisoned(nhwc_count, e.type);
  const cuda::DeviceBuffer dst =
      testing::poisoned(static_cast<std::size_t>(a.element_count()), StorageType::kFloat32);
  cuda::kernels::nchw_to_nhwc(a_src.as<float>(), a_nhwc.data(), e.type, s, stream.get());
  cuda::kernels::nchw_to_nhwc(b_src.as<float>(), b_nhwc.data(), e.type, s, stream.get());
  cuda::kernels::add_activation(a_nhwc.data(), e.with_b ? b_nhwc.data() : nullptr, y_nhwc.data(),
                                static_cast<std::int64_t>(nhwc_count), e.type, e.act.act,
                                e.act.params, stream.get());
  cuda::kernels::nhwc_to_nchw(y_nhwc.data(), e.type, dst.as<float>(), s, stream.get());
  const std::vector<float> got =
      testing::download(dst, static_cast<std::size_t>(a.element_count()), stream);
  EXPECT_TRUE(testing::close(got, want, e.type, describe(e)));
}

std::vector<EltwiseCase> eltwise_cases() {
  std::vector<EltwiseCase> cases;
  for (StorageType type : {StorageType::kFloat32, StorageType::kFloat16})
    for (const ActivationCase& ac : kActivations)
      for (bool with_b : {false, true}) {
        cases.push_back({ac, with_b, {1, 3, 9, 7, 8}, type});
        cases.push_back({ac, with_b, {5, 17, 6, 5, 24}, type});
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Kernels, AddActivation, ::testing::ValuesIn(eltwise_cases()));

// Flat buffers starting one element past an aligned address, with a length
// that is no multiple of the vector width: the scalar path and the tail.
TEST(AddActivationFlat, UnalignedBuffersAndInPlace) {
  ANVIL_REQUIRE_GPU();
  constexpr std::int64_t kCount = 1001;
  const Tensor a = random_tensor({kCount}, 31, -3.0f, 3.0f);
  const Tensor b = random_tensor({kCount}, 32, -3.0f, 3.0f);
  for (const ActivationCase& ac : kActivations) {
    const Tensor want = cpu_reference(ac, a, &b);
    cuda::Stream stream;
    cuda::DeviceBuffer a_dev(static_cast<std::size_t>(kCount + 1) * 4);
    cuda::DeviceBuffer b_dev(static_cast<std::size_t>(kCount + 1) * 4);
    float* a_ptr = a_dev.as<float>() + 1;
    float* b_ptr = b_dev.as<float>() + 1;
    cuda::copy_to_device(a_ptr, a.data<float>(), kCount * 4);
    cuda::copy_to_device(b_ptr, b.data<float>(), kCount * 4);
    // In place: y is a.
    cuda::kernels::add_activation(a_ptr, b_ptr, a_ptr, kCount, StorageType::kFloat32, ac.act,
                                  ac.params, stream.get());
    stream.synchronize();
    std::vector<float> got(kCount);
    ANVIL_GPU_CHECK(cudaMemcpy(got.data(), a_ptr, kCount * 4, cudaMemcpyDeviceToHost));
    EXPECT_TRUE(testing::close(got, want, StorageType::kFloat32,
                               cat(ac.name, "(a + b) flat n=", kCount, " unaligned, in place")));
  }
}

// The same function the kernels apply, evaluated on the host, at the points
// where ONNX semantics are easiest to get wrong.
TEST(ApplyActivation, FollowsOnnxAtTheEdges) {
  const ActivationParams none{};
  EXPECT_EQ(cuda::kernels::apply_activation(-0.0f, Activation::kRelu, none), 0.0f);
  EXPECT_EQ(cuda::kernels::apply_activation(7.0f, Activation::kClip, none), 7.0f);  // unbounded
  EXPECT_EQ(cuda::kernels::apply_activation(-100.0f, Activation::kSigmoid, none),
            std::exp(-100.0f) / (1.0f + std::exp(-100.0f)));
  EXPECT_EQ(cuda::kernels::apply_activation(3.0f, Activation::kHardSwish, none), 3.0f);
  EXPECT_EQ(cuda::kernels::apply_activation(-3.0f, Activation::kHardSwish, none), -0.0f);
  EXPECT_TRUE(std::isnan(cuda::kernels::apply_activation(NAN, Activation::kClip,
                                                         {.clip_min = 0.0f, .clip_max = 6.0f})));
}

}  // namespace
}  // namespace anvil
