// The models python/make_models.py generates (torchvision-shaped ResNet-18,
// MobileNetV2, ...), written on demand with the project's Python
// environment for the unit tests that lower or run whole networks.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "anvil/error.h"

namespace anvil::test {

inline std::filesystem::path repo_root() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

// Writes python/make_models.py's `model` with 10 classes to a temporary
// file named after `test` (so that parallel test binaries do not collide);
// empty when the project's Python environment is missing or the script
// fails.
inline std::filesystem::path generated_model(const std::string& model, const std::string& test) {
  const auto root = repo_root();
  const auto python = root / ".venv/bin/python";
  if (!std::filesystem::exists(python)) return {};
  const auto out = std::filesystem::temp_directory_path() /
                   cat("anvil_", test, "_", model, "_", ::getpid(), ".onnx");
  const std::string command =
      cat(python.string(), " ", (root / "python/make_models.py").string(), " --model ", model,
          " --classes 10 -o ", out.string(), " > /dev/null");
  if (std::system(command.c_str()) != 0) return {};
  return out;
}

}  // namespace anvil::test
