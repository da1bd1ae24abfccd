// Image files for `anvil run --images` and classification: decoding (JPEG
// with libjpeg-turbo, PNG with libpng) and the torchvision-style ImageNet
// preprocessing on the host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace anvil::io {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;  // height x width x 3, row-major
};

// Decodes a JPEG or PNG file (chosen by its leading bytes) to 8-bit RGB.
// Grayscale, palette and alpha images are converted. A corrupt, truncated or
// unknown file is an Error naming the file.
Image decode_image(const std::filesystem::path& path);

// torchvision's eval transform: resize so the shorter side is
// `height * 256 / 224` (bilinear), center-crop height x width, scale to [0,1]
// and normalize with the ImageNet mean and std. Writes 3 planes (CHW) to `out`.
void preprocess_imagenet(const Image& image, int height, int width, float* out);

}  // namespace anvil::io
