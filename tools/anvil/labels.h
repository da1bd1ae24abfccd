// Class names for the verbs that print predictions (`anvil run`, `anvil classify`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anvil::cli {

// One class name per line; none for an empty path. kIo when the file cannot be opened.
std::vector<std::string> read_labels(const std::string& path);

// The name of class `index`, or "class N" where the labels do not reach it.
std::string label_name(const std::vector<std::string>& labels, std::int64_t index);

}  // namespace anvil::cli
