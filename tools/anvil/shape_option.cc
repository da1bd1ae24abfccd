#include "shape_option.h"

#include <algorithm>
#include <exception>

#include "anvil/error.h"

namespace anvil::cli {

std::pair<std::string, std::vector<std::int64_t>> parse_shape(const std::string& text,
                                                              const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    fail(ErrorKind::kInvalidArgument, option, " '", text,
         "': expected NAME:DxDxD, e.g. input:8x3x224x224");
  std::vector<std::int64_t> dims;
  std::size_t start = colon + 1;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('x', start), text.size());
    try {
      dims.push_back(std::stoll(text.substr(start, end - start)));
    } catch (const std::exception&) {
      fail(ErrorKind::kInvalidArgument, option, " '", text, "': '", text.substr(start, end - start),
           "' is not a dimension");
    }
    if (dims.back() < 1)
      fail(ErrorKind::kInvalidArgument, option, " '", text, "': dimensions must be >= 1");
    start = end + 1;
  }
  return {text.substr(0, colon), dims};
}
}  // namespace anvil::cli
