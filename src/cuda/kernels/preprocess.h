// Image preprocessing on the GPU: decoded 8-bit images (3 channels, packed
// HWC or planar CHW) are normalized and converted to the engine's input in one kernel,
// so a quarter of the bytes of an FP32 input cross PCIe. The arithmetic is
// io::preprocess_imagenet's ((v / 255 - mean[c]) / std[c], ImageNet mean and
// std by default) on pixels the host has already resized and cropped.
//
// Launchers only enqueue work on `stream`: they never allocate or
// synchronize (so they can be captured in a CUDA graph). Bad sizes, pointers
// or normalization constants are an anvil::Error of kind kInvalidArgument; a
// failed launch one of kind kGpu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/storage.h"

namespace anvil::cuda::kernels {

// Per output channel (R, G, B): the network sees (v / 255 - mean[c]) / std[c].
// The defaults are ImageNet's, as in io::preprocess_imagenet.
struct Normalization {
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};
};

// The normalization as one FMA a value: v = byte * scale[c] + bias[c], with
// scale = 1 / (255 std) and bias = -mean / std folded in double. Every
// kernel that normalizes image bytes (these, and the stem reading images
// itself: stem_conv_pool.h) uses it, so they give the same bits.
struct ImageAffine {
  float scale[3];
  float bias[3];
};
ImageAffine fold_normalization(const Normalization& norm);

// The byte order of a pixel in the source images. Outputs are always RGB
// (channel 0 = red); kBgr (OpenCV's order) swaps the bytes while reading.
enum class ChannelOrder { kRgb, kBgr };

// Where a pixel's 3 bytes are: kNhwc packs them ([n, h, w, 3]); kNchw keeps
// one h x w plane per channel and image ([n, 3, h, w]).
enum class PixelLayout { kNhwc, kNchw };

// n images of h x w pixels, 3 bytes a pixel, rows packed (no stride). With
// kBgr and kNchw, plane 0 is blue.
struct ImageBatchShape {
  std::int64_t n = 1;
  std::int64_t h = 1;
  std::int64_t w = 1;
  ChannelOrder order = ChannelOrder::kRgb;
  PixelLayout layout = PixelLayout::kNhwc;
};

// src: uint8 images (shape.layout) -> dst: float32 NCHW [n, 3, h, w],
// normalized: the engine's user-facing FP32 input.
void images_to_nchw(const std::uint8_t* src, float* dst, const ImageBatchShape& shape,
                    const Normalization& norm, cudaStream_t stream);

// src: uint8 images (shape.layout) -> dst: the engine's storage [n, h, w, c_pad] as
// dst_type, normalized, channels 3..c_pad-1 written as zeros: what the
// engine's reformat_in layer makes of images_to_nchw's output, in one pass.
// c_pad is 4 (an RGB input's padding in FP16 and FP32, builder/lower.h) or 8;
// dst must be 16-byte aligned (any cudaMalloc or arena tensor is).
void images_to_engine_storage(const std::uint8_t* src, void* dst, StorageType dst_type,
                              std::int64_t c_pad, const ImageBatchShape& shape,
                              const Normalization& norm, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
