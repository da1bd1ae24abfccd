#include "labels.h"

#include <fstream>

#include "anvil/error.h"

namespace anvil::cli {

std::vector<std::string> read_labels(const std::string& path) {
  std::vector<std::string> labels;
  if (path.empty()) return labels;
  std::ifstream file(path);
  if (!file) fail(ErrorKind::kIo, path, ": cannot open labels file");
  for (std::string line; std::getline(file, line);) {
    // Files written on Windows end their lines with \r.
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

std::string label_name(const std::vector<std::string>& labels, std::int64_t index) {
  if (index >= 0 && index < static_cast<std::int64_t>(labels.size()))
    return labels[static_cast<std::size_t>(index)];
  return cat("class ", index);
}

}  // namespace anvil::cli
