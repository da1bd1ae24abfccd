// Runs a model in the ONNX test-data layout through import and the CPU
// reference runtime and compares with the expected outputs:
//
//   DIR/model.onnx
//   DIR/test_data_set_N/input_K.pb, output_K.pb   (serialized TensorProto)
//
// Shared by the ONNX conformance suite and the whole-model tests.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace anvil::testing {

enum class Outcome { kPassed, kFailed, kSkipped };

struct CaseResult {
  Outcome outcome = Outcome::kPassed;
  std::string reason;            // why it failed or was skipped
  std::vector<std::string> ops;  // op types of the model, sorted, unique
  double max_abs_error = 0.0;    // over every output element of every data set
  double max_rel_error = 0.0;    // max |got - want| / max |want|, per output
};

struct Tolerance {
  double rtol = 1e-4;
  double atol = 1e-5;
};

// Elementwise check |got - want| <= atol + rtol * |want| (NaN matches NaN);
// unsupported features (kUnsupported errors) make the case skipped.
CaseResult run_test_case(const std::filesystem::path& dir, const Tolerance& tolerance);

}  // namespace anvil::testing
