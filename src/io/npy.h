// NumPy .npy files: the simplest way to hand a batch to `anvil run --input`.
#pragma once

#include <filesystem>

#include "core/tensor.h"

namespace anvil::io {

// Reads a C-ordered .npy array of float32, float64 (converted to float32),
// int64, int32 or uint8. Errors name the file and what is wrong with it.
Tensor read_npy(const std::filesystem::path& path);

// Writes `tensor` as a C-ordered .npy file (format version 1.0).
void write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace anvil::io
