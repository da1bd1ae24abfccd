// Whole-model test: runs models in the ONNX test-data layout (written by
// python/make_model_tests.py) through import and the CPU reference runtime
// and compares with onnxruntime's outputs.
//
//   model_test DIR [DIR...]
//
// The criterion is the error relative to the output's range, max |anvil -
// ort| / max |ort| <= 1e-4 per output: deep networks accumulate rounding
// differences of the order of the logits' scale times 1e-6, so a per-element
// relative check would flag near-zero logits that are correct. The loose
// elementwise check still catches NaN, Inf and gross errors. Exits non-zero
// when any model fails or is skipped.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "golden/test_case.h"
#include "onnx/tensor_proto.h"

namespace fs = std::filesystem;
using anvil::testing::Outcome;

namespace {

constexpr double kMaxRelError = 1e-4;
// Loose enough never to bind before kMaxRelError on logits of a few units.
constexpr anvil::testing::Tolerance kElementwise{.rtol = 1e-2, .atol = 1e-2};

std::string model_name(const fs::path& dir) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(dir, ec);
  return (ec ? dir : canonical).filename().string();
}

std::vector<fs::path> data_sets(const fs::path& dir) {
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_directory()) sets.push_back(entry.path());
  std::sort(sets.begin(), sets.end());
  return sets;
}

// "test_data_set_0 (input [1,3,224,224])": the set and the shape of its first
// input, which shows the batch size.
std::string describe(const fs::path& set) {
  std::string text = set.filename().string();
  try {
    const anvil::Tensor input = anvil::onnx::read_tensor_file(set / "input_0.pb");
    text += " (input " + anvil::to_string(input.extents()) + ")";
  } catch (const anvil::Error&) {
    text += " (no readable input_0.pb)";
  }
  return text;
}

// Runs one model directory; returns whether it passed.
bool run_model(const fs::path& dir) {
  const std::string name = model_name(dir);
  if (!fs::is_regular_file(dir / "model.onnx")) {
    std::printf("[%s] FAILED: no model.onnx in %s\n", name.c_str(), dir.c_str());
    return false;
  }
  const std::vector<fs::path> sets = data_sets(dir);
  if (sets.empty()) {
    std::printf("[%s] FAILED: no test_data_set_* in %s\n", name.c_str(), dir.c_str());
    return false;
  }
  std::string listing;
  for (const fs::path& set : sets)
    listing += (listing.empty() ? "" : ", ") + describe(set);
  std::printf("[%s] data sets: %s\n", name.c_str(), listing.c_str());
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  const anvil::testing::CaseResult result = anvil::testing::run_test_case(dir, kElementwise);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  bool passed = result.outcome == Outcome::kPassed && result.max_rel_error <= kMaxRelError;
  const char* verdict = passed                                ? "PASSED"
                        : result.outcome == Outcome::kSkipped ? "SKIPPED"
                                                              : "FAILED";
  std::printf("[%s] %s: max abs error %.3g, max rel error %.3g (limit %.0e), %.2f s\n",
              name.c_str(), verdict, result.max_abs_error, result.max_rel_error, kMaxRelError,
              seconds);
  if (!result.reason.empty()) std::printf("[%s]   %s\n", name.c_str(), result.reason.c_str());
  if (result.outcome == Outcome::kPassed && !passed)
    std::printf("[%s]   max rel error %.3g exceeds %.0e\n", name.c_str(), result.max_rel_error,
                kMaxRelError);
  return passed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: %s DIR [DIR...]\n  DIR holds model.onnx and test_data_set_N/\n", argv[0]);
    return 2;
  }
  int passed = 0, failed = 0;
  for (int i = 1; i < argc; ++i) {
    bool ok = false;
    try {
      ok = run_model(argv[i]);
    } catch (const std::exception& e) {  // a filesystem error: unreadable DIR
      std::printf("[%s] FAILED: %s\n", argv[i], e.what());
    }
    ++(ok ? passed : failed);
  }
  std::printf("\n%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
