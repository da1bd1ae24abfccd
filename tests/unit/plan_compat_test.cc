// check_compatible: a plan runs only where its GPU and library majors match.
#include <gtest/gtest.h>

#include <string>

#include "anvil/error.h"
#include "plan/plan.h"
#include "plan_test_util.h"

namespace anvil::plan {
namespace {

using anvil::testing::h100_target;
using anvil::testing::small_plan;

// The message of the error check_compatible raises; empty when it accepts.
std::string refusal(const TargetInfo& current) {
  try {
    check_compatible(small_plan(), current);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIncompatible);
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(PlanCompat, TheSameMachineIsCompatible) {
  EXPECT_EQ(refusal(h100_target()), "");
}

TEST(PlanCompat, NewerMinorsAndANewerCudaRuntimeAreCompatible) {
  TargetInfo current = h100_target();
  current.gpu_name = "NVIDIA H200";  // same compute capability 9.0
  current.cudnn_version = 91900;
  current.cublaslt_version = 130203;
  current.cuda_runtime_version = 14010;
  EXPECT_EQ(refusal(current), "");
}

TEST(PlanCompat, AnotherComputeCapabilityMajorIsNamed) {
  TargetInfo current = h100_target();
  current.cc_major = 8;
  current.gpu_name = "NVIDIA A100-SXM4-80GB";
  EXPECT_EQ(refusal(current),
            "model.plan was built for compute capability 9.0 (NVIDIA H100 80GB HBM3); this "
            "machine has 8.0 (NVIDIA A100-SXM4-80GB): rebuild the plan here with `anvil build`");
}

TEST(PlanCompat, AnotherComputeCapabilityMinorIsNamed) {
  TargetInfo current = h100_target();
  current.cc_minor = 1;
  EXPECT_HAS(refusal(current), "compute capability 9.0 (NVIDIA H100 80GB HBM3)");
  EXPECT_HAS(refusal(current), "this machine has 9.1");
}

TEST(PlanCompat, AnotherCudnnMajorIsNamed) {
  TargetInfo current = h100_target();
  current.cudnn_version = 8907;  // cuDNN 8 encodes 1000*major + 100*minor + patch
  EXPECT_EQ(refusal(current),
            "model.plan was built with cuDNN 9.14; this machine has cuDNN 8.9: rebuild the plan "
            "here with `anvil build`");
}

TEST(PlanCompat, AnotherCublasLtMajorIsNamed) {
  TargetInfo current = h100_target();
  current.cublaslt_version = 120904;
  EXPECT_HAS(refusal(current), "was built with cuBLASLt 13.1; this machine has cuBLASLt 12.9");
}

TEST(PlanCompat, AnOlderCudaRuntimeMajorIsNamed) {
  TargetInfo current = h100_target();
  current.cuda_runtime_version = 12080;
  EXPECT_HAS(refusal(current),
             "was built with CUDA runtime 13.0; this machine has CUDA runtime 12.8");
}

TEST(PlanCompat, OneErrorNamesEveryMismatch) {
  TargetInfo current = h100_target();
  current.cc_major = 8;
  current.gpu_name = "A100";
  current.cudnn_version = 8907;
  EXPECT_EQ(refusal(current),
            "model.plan was built for compute capability 9.0 (NVIDIA H100 80GB HBM3) with cuDNN "
            "9.14; this machine has 8.0 (A100) with cuDNN 8.9: rebuild the plan here with `anvil "
            "build`");
  current.cublaslt_version = 120904;
  current.cuda_runtime_version = 12080;
  EXPECT_HAS(refusal(current),
             "with cuDNN 9.14, cuBLASLt 13.1, CUDA runtime 13.0; this machine has 8.0 (A100) with "
             "cuDNN 8.9, cuBLASLt 12.9, CUDA runtime 12.8");
}

TEST(PlanCompat, TheLabelStartsTheMessage) {
  TargetInfo current = h100_target();
  current.cc_major = 10;
  try {
    check_compatible(small_plan(), current, "/models/resnet50.plan");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(std::string_view(e.what()).starts_with("/models/resnet50.plan was built for"));
  }
}

}  // namespace
}  // namespace anvil::plan
