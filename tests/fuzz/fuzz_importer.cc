// libFuzzer target for the ONNX importer: any bytes must either import or
// raise anvil::Error. A crash, a sanitizer report, a hang or any other
// exception is a bug. External data resolves against ANVIL_FUZZ_MODEL_DIR,
// a folder in the build tree holding the seed corpus's weights file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "anvil/error.h"
#include "onnx/importer.h"

#ifndef ANVIL_FUZZ_MODEL_DIR
#define ANVIL_FUZZ_MODEL_DIR "/nonexistent/anvil-fuzz"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    anvil::onnx::import_model_bytes(bytes, ANVIL_FUZZ_MODEL_DIR, "fuzz input");
  } catch (const anvil::Error&) {
    // The importer's documented way to refuse a model.
  }
  return 0;
}
