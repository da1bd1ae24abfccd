// ONNX backend node tests (Debian's libonnx-testdata) through import and the
// CPU reference runtime.
//
// A test is in scope when the op it tests is in Anvil's op set: the model's
// only op type, or else the registered op of the model whose name begins the
// test's name. In-scope tests run; a kUnsupported error (an opset, dtype or
// attribute Anvil does not handle) skips the test and prints why. Any failure
// fails the suite. Prints a table: op, tests run, passed, skipped, failed.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>

#include "golden/test_case.h"
#include "ops/op.h"

namespace fs = std::filesystem;
using anvil::testing::Outcome;

namespace {

std::string squash(std::string s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The op the test exercises, or "" when it is not one of Anvil's.
std::string op_under_test(const std::string& test_name, const std::vector<std::string>& ops) {
  if (ops.size() == 1) return anvil::ops::find_op(ops[0]) ? ops[0] : "";
  const std::string name = squash(test_name.substr(5));  // drop "test_"
  std::string best;
  for (const auto& op : ops)
    if (anvil::ops::find_op(op) && name.rfind(squash(op), 0) == 0 && op.size() > best.size())
      best = op;
  return best;
}

struct Row {
  int run = 0, passed = 0, skipped = 0, failed = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "/usr/share/libonnx-testdata/data/node";
  if (!fs::is_directory(root)) {
    std::printf("ONNX node tests not found at %s (install libonnx-testdata)\n", root.c_str());
    return 1;
  }
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "model.onnx"))
      dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());

  std::map<std::string, Row> rows;
  for (const auto* entry : anvil::ops::registered_ops())
    rows[std::string(entry->op_type)];
  std::vector<std::string> failures, skips;
  int out_of_scope = 0;
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    auto result = anvil::testing::run_test_case(dir, {});
    const std::string op = op_under_test(name, result.ops);
    if (op.empty()) {
      ++out_of_scope;
      continue;
    }
    Row& row = rows[op];
    ++row.run;
    switch (result.outcome) {
      case Outcome::kPassed:
        ++row.passed;
        break;
      case Outcome::kSkipped:
        ++row.skipped;
        skips.push_back(name + ": " + result.reason);
        break;
      case Outcome::kFailed:
        ++row.failed;
        failures.push_back(name + ": " + result.reason);
        break;
    }
  }

  Row total;
  std::printf("\n%-20s %5s %7s %8s %7s\n", "op", "run", "passed", "skipped", "failed");
  for (const auto& [op, row] : rows) {
    std::printf("%-20s %5d %7d %8d %7d\n", op.c_str(), row.run, row.passed, row.skipped,
                row.failed);
    total.run += row.run;
    total.passed += row.passed;
    total.skipped += row.skipped;
    total.failed += row.failed;
  }
  std::printf("%-20s %5d %7d %8d %7d\n", "total", total.run, total.passed, total.skipped,
              total.failed);
  std::printf("(%d tests of ops outside Anvil's op set not run)\n", out_of_scope);
  if (!skips.empty()) std::printf("\nSkipped, with the reason:\n");
  for (const auto& s : skips)
    std::printf("  %s\n", s.c_str());
  if (!failures.empty()) std::printf("\nFAILED:\n");
  for (const auto& f : failures)
    std::printf("  %s\n", f.c_str());
  std::printf("\n%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped);
  return total.failed == 0 && total.passed > 0 ? 0 : 1;
}
