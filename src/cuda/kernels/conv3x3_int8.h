// Our INT8 3x3 convolution for 64 channels in and out, stride 1, padding 1
// (ResNet-18/34's layer1 at 56 x 56): the shape where cuDNN's best engine
// runs at about 3.5x its floors (docs/INT8.md). It computes the conv_int8
// plan contract (builder/lower.h) on INT8 NHWC tensors:
//
//   y = sat(rint(act(float(acc) * scale[k] + bias[k] [+ residual_scale * residual])))
//
// acc the exact INT32 sum, each FP32 step rounded as written (no FMA), rint
// half to even, sat to [-128, 127], act ReLU or none: the same bits as the
// CPU reference. The filter is KRSC [64, 3, 3, 64] INT8; scale and bias are
// FP32 [64]; residual and y [n, h, w, 64] INT8. x, filter, residual and y
// 16-byte aligned.
//
// The runtime offers two of its kernels as conv_int8 tactics beside cuDNN's
// engines (runtime/layers/conv_int8.cc); the autotuner times and checks
// them like those.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace anvil::cuda::kernels {

inline constexpr int kConv3x3Int8Channels = 64;

// Which kernel computes it: the mma.sync one (conv3x3_int8.cu, sm_80 and
// later); the warpgroup-MMA one with the filter in registers
// (conv3x3_int8_wgmma_rs.cu, sm_90 with sm_90a code, seventeenth session:
// 20-35% faster than cuDNN at batch 128 on an H100); or the warpgroup-MMA
// one with both operands in shared memory (conv3x3_int8_wgmma.cu: 2-10%
// faster than mma.sync at batch 128, 25-40% slower at 32, thirteenth
// session, docs/INT8.md), which only tests and bench/conv3x3_int8.sh run.
// The first two are conv_int8 tactics (runtime/layers/tactic.h).
// kWgmmaFilterInShared is the filter-in-registers kernel reading its A
// operand (the filter) from shared memory instead, every step: 72 registers
// a thread freed, and the shape a kernel for more than 64 channels needs
// (docs/INT8.md). Tests and the bench only; not yet timed on a GPU.
enum class Conv3x3Int8Kernel { kMmaSync, kWgmma, kWgmmaFilterInRegisters, kWgmmaFilterInShared };

struct Conv3x3Int8Shape {
  std::int64_t n = 1, h = 1, w = 1;  // x's and y's: stride 1, padding 1
  bool relu = false;
  bool has_bias = false, has_residual = false;
  float residual_scale = 1.0f;
  // At most this many blocks (0: as many as the device holds at once). Tests
  // set it to make each block walk many bands.
  int max_blocks = 0;
  Conv3x3Int8Kernel kernel = Conv3x3Int8Kernel::kMmaSync;
  int wgmma_parts = 4;  // the wgmma kernels' step: 2 or 4 x 64 output pixels
};

// The kernel's launch for one shape on the current device, decided once: the
// band of output rows a block computes at a time, the grid, the shared memory.
class Conv3x3Int8 {
 public:
  // kUnsupported where the kernel cannot run it: a device before sm_80 (for
  // the wgmma kernel, other than sm_90), a build without code for this
  // device, an image wider than 256 pixels, or more shared memory than the
  // device gives a block. kInvalidArgument for empty or negative sizes.
  explicit Conv3x3Int8(const Conv3x3Int8Shape& shape);

  // Enqueues y = conv(x) on `stream`. bias null when !has_bias, residual
  // null when !has_residual; kInvalidArgument for a missing or misaligned
  // pointer.
  void run(const void* x, const void* filter, const float* scale, const float* bias,
           const void* residual, void* y, cudaStream_t stream) const;

  const Conv3x3Int8Shape& shape() const { return shape_; }

 private:
  Conv3x3Int8Shape shape_;
  // Work units: the mma.sync kernel's bands of output rows (band_rows_ of
  // them, bands_ an image), or the wgmma kernel's steps (units_per_image_).
  int band_rows_ = 1, bands_ = 1, units_per_image_ = 0;
  long long units_ = 0;
  int blocks_ = 0, smem_bytes_ = 0;
};

}  // namespace anvil::cuda::kernels
