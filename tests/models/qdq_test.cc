// Quantized-model test: runs the Q/DQ-wrapped Conv written by
// tests/models/make_qdq_conv.py through import and the CPU reference runtime
// and compares every output with onnxruntime's.
//
//   qdq_test DIR
//
// Unlike the float models, nothing here accumulates rounding error through
// depth, so the check is elementwise and tight: |anvil - ort| <= 1e-5 +
// 1e-5 |ort|. The uint8 output must match exactly (integers 1 apart), which
// checks that both round the same halfway cases and saturate alike. Exits
// non-zero when the model fails or is skipped.
#include <cstdio>
#include <filesystem>

#include "golden/test_case.h"

namespace {

constexpr anvil::testing::Tolerance kTolerance{.rtol = 1e-5, .atol = 1e-5};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::printf("usage: %s DIR\n  DIR holds model.onnx and test_data_set_N/\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const anvil::testing::CaseResult result = anvil::testing::run_test_case(dir, kTolerance);
  const bool passed = result.outcome == anvil::testing::Outcome::kPassed;
  const char* verdict = passed                                                ? "PASSED"
                        : result.outcome == anvil::testing::Outcome::kSkipped ? "SKIPPED"
                                                                              : "FAILED";
  std::printf("[%s] %s: max abs error %.3g (tolerance %.0e + %.0e |want|)\n", dir.c_str(), verdict,
              result.max_abs_error, kTolerance.atol, kTolerance.rtol);
  if (!result.reason.empty()) std::printf("[%s]   %s\n", dir.c_str(), result.reason.c_str());
  return passed ? 0 : 1;
}
