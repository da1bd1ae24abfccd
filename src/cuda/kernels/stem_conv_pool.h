// ResNet's stem in one kernel: y = MaxPool(3x3, stride 2, pad 1)(act(
// Conv(7x7, stride 2, pad 3)(x, W) + bias)), FP16 NHWC with the RGB input
// stored as 4 channels and 64 output channels, FP32 accumulation on tensor
// cores. cuDNN's best engine for this convolution (4 input channels) reaches
// a fifth of the tensor-core rate, and the separate pool re-reads its 205 MB
// output at batch 128; this kernel writes only the pooled quarter. In an
// INT8 engine it also quantizes what it writes (StemShape::int8_scale), which
// saves the separate "quantize" layer its re-read of the pooled tensor.
//
// Launchers only enqueue work on `stream`: they never allocate or
// synchronize (so they can be captured in a CUDA graph). Bad sizes are an
// anvil::Error of kind kInvalidArgument; a failed launch one of kind kGpu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/preprocess.h"

namespace anvil::cuda::kernels {

inline constexpr int kStemInChannels = 4;    // stored: RGB + a zero channel
inline constexpr int kStemOutChannels = 64;  // stored, padding included
inline constexpr int kStemKernel = 7;

// How x is stored: FP16 NHWC, RGB and a zero channel (what the plan's
// reformat_in writes), or the network's own FP32 NCHW RGB input, which the
// kernel converts as it loads (rounding as reformat_in does, so the output
// is the same bits), saving reformat_in's pass over the input; or uint8 RGB
// images, packed NHWC, which it normalizes as it loads
// (StemShape::image_affine, images_to_engine_storage's arithmetic: the
// output is the bits of the FP16 NHWC4 input that kernel writes), saving
// the preprocessing pass and reading 3 bytes a pixel instead of 8. Images
// are read by the row kernel only (stem_reads_images).
enum class StemInput { kFloat16Nhwc4, kFloat32Nchw, kUint8Nhwc };

// Which kernel computes it: the tiled one (mma.sync: any GPU since Ampere,
// any size) or the row kernel (Hopper's wgmma, in builds for sm_90a, for
// 224-wide inputs: stem_conv_pool_rows.h). kAuto takes the row kernel
// wherever it applies; tests and bench/stem.sh name one to compare them.
enum class StemKernel { kAuto, kTiles, kRows };

struct StemShape {
  std::int64_t n = 1;
  std::int64_t in_h = 224;
  std::int64_t in_w = 224;
  bool relu = true;  // else no activation
  StemInput input = StemInput::kFloat16Nhwc4;
  // 0: y is FP16. > 0: y is INT8, q = sat(rint(m / int8_scale)) of the FP16
  // value m the FP16 output would hold (quantize_int8's arithmetic, bit for
  // bit: IEEE division, halves to even, saturation to [-128, 127], NaN -> 0).
  float int8_scale = 0.0f;
  // INT8 only: round by a multiply with fl(1 / int8_scale) and a conversion
  // (2 instructions an element instead of int8_math.cuh's ~15 with its
  // check). Set it to stem_int8_rounds_by_reciprocal(int8_scale), never
  // more: the bits stay those of the division where that says true.
  bool int8_by_reciprocal = false;
  StemKernel kernel = StemKernel::kAuto;
  // StemInput::kUint8Nhwc only: value = byte * scale[c] + bias[c], then FP16
  // (fold_normalization of the images' mean and std).
  ImageAffine image_affine = fold_normalization(Normalization{});
  // The row kernel's pooled rows a block (0: chosen by the batch size);
  // bench/stem.sh times other heights with it.
  std::int64_t band_rows = 0;

  std::int64_t conv_h() const { return (in_h + 6 - kStemKernel) / 2 + 1; }
  std::int64_t conv_w() const { return (in_w + 6 - kStemKernel) / 2 + 1; }
  std::int64_t out_h() const { return (conv_h() + 2 - 3) / 2 + 1; }
  std::int64_t out_w() const { return (conv_w() + 2 - 3) / 2 + 1; }
};

// Whether every FP16 value x (the kernel quantizes FP16 maxima, nothing
// else) rounds alike as sat(rint(fl(x * fl(1 / scale)))) and as the IEEE
// quotient's sat(rint(fl(x / scale))). It tries all 65,536 of them (about
// half a millisecond): compute it once per scale, as the plan's runner does
// when it loads.
bool stem_int8_rounds_by_reciprocal(float scale);

// Whether StemKernel::kRows can compute `shape` on the current device.
bool stem_rows_applies(const StemShape& shape);

// Whether the kernel can read `shape` from uint8 images (StemInput::
// kUint8Nhwc) on the current device: where the row kernel applies.
inline bool stem_reads_images(const StemShape& shape) {
  return stem_rows_applies(shape);
}

// x: [n, in_h, in_w, 4] FP16, [n, 3, in_h, in_w] FP32 or [n, in_h, in_w, 3] uint8
// (shape.input; uint8 where stem_reads_images, else kUnsupported); filter: [64, 7, 7, 4] FP16
// (KRSC); bias: [64] FP32; y: [n, out_h, out_w, 64] FP16, or INT8 when shape.int8_scale > 0.
// Pointers 16-byte aligned; int8_scale finite and >= 0.
void stem_conv_pool(const void* x, const void* filter, const float* bias, void* y,
                    const StemShape& shape, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
