// libFuzzer target for the calibration cache reader: any bytes must either
// read as a table or raise anvil::Error; a table that reads must write and
// read back equal. A crash, a sanitizer report, a hang or any other exception
// is a bug. The reader takes a path, so each input goes through a file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "anvil/error.h"
#include "quant/calibration_cache.h"

namespace {

std::filesystem::path scratch(const char* what) {
  return std::filesystem::temp_directory_path() /
         ("anvil_fuzz_cache_" + std::to_string(::getpid()) + what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path input = scratch(".txt"), copy = scratch("_copy.txt");
  std::ofstream(input, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  anvil::quant::CalibrationTable table;
  try {
    table = anvil::quant::read_calibration_cache(input);
  } catch (const anvil::Error&) {
    std::filesystem::remove(input);
    return 0;  // the reader's documented way to refuse a file
  }
  anvil::quant::write_calibration_cache(copy, table);
  if (anvil::quant::read_calibration_cache(copy) != table) std::abort();
  std::filesystem::remove(input);
  std::filesystem::remove(copy);
  return 0;
}
