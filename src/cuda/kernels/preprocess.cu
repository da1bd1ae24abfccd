// The input is n * h * w pixels of 3 bytes, packed (NHWC) or in three planes
// per image (NCHW). A thread takes 4 consecutive pixels of one image as three
// aligned 4-byte loads (12 packed bytes, or 4 bytes of each plane) where the
// pointers allow, else one pixel with byte loads; either way a warp reads
// consecutive addresses. Normalization is one FMA per value with
// scale = 1 / (255 * std) and bias = -mean / std folded on the host; both
// kernels share that arithmetic, so images_to_engine_storage gives bit for bit
// what images_to_nchw followed by the engine's reformat_in gives.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kGroup = 4;  // pixels per thread on the vector path: 12 bytes, 3 words

// Byte `c` (in source order) of pixel `pixel` (of the whole batch).
template <bool kPlanar>
__device__ __forceinline__ unsigned source_byte(const std::uint8_t* __restrict__ src,
                                                long long pixel, int c, long long hw) {
  if constexpr (kPlanar) {
    const long long image = pixel / hw, p = pixel - image * hw;
    return __ldg(src + (image * 3 + c) * hw + p);
  } else {
    return __ldg(src + 3 * pixel + c);
  }
}

// Normalized RGB values of pixels [first, first + kPix), those below `pixels`
// (the rest are left as the bias: never stored). kPlanar: NCHW source, whose
// 4-pixel groups need hw % 4 == 0 (a group then never straddles two images).
template <int kPix, bool kBgr, bool kPlanar>
__device__ __forceinline__ void load_pixels(const std::uint8_t* __restrict__ src, long long first,
                                            long long pixels, long long hw, const ImageAffine& a,
                                            float (&v)[kPix][3]) {
  unsigned bytes[3 * kPix];
  bool loaded = false;
  if constexpr (kPix == kGroup && kPlanar) {
    if (first + kPix <= pixels) {
      // (image * 3 + c) * hw + p: 4-byte aligned when src is, as hw and p are multiples of 4.
      const long long image = first / hw, p = first - image * hw;
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const unsigned word =
            __ldg(reinterpret_cast<const unsigned*>(src + (image * 3 + c) * hw + p));
#pragma unroll
        for (int j = 0; j < 4; ++j)
          bytes[3 * j + c] = (word >> (8 * j)) & 0xffu;  // pixel j's byte of plane c
      }
      loaded = true;
    }
  } else if constexpr (kPix == kGroup) {
    if (first + kPix <= pixels) {
      // 12 * (first / 4) bytes in: 4-byte aligned when src is.
      const auto* words = reinterpret_cast<const unsigned*>(src + 3 * first);
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        const unsigned word = __ldg(words + k);
#pragma unroll
        for (int j = 0; j < 4; ++j)
          bytes[4 * k + j] = (word >> (8 * j)) & 0xffu;  // little-endian: byte 0 first
      }
      loaded = true;
    }
  }
  if (!loaded) {
#pragma unroll
    for (int i = 0; i < kPix; ++i)
#pragma unroll
      for (int c = 0; c < 3; ++c)
        bytes[3 * i + c] = first + i < pixels ? source_byte<kPlanar>(src, first + i, c, hw) : 0u;
  }
#pragma unroll
  for (int i = 0; i < kPix; ++i)
#pragma unroll
    for (int c = 0; c < 3; ++c)
      v[i][c] = fmaf(static_cast<float>(bytes[3 * i + (kBgr ? 2 - c : c)]), a.scale[c], a.bias[c]);
}

// kPix == 4 only when h * w % 4 == 0: a group then never straddles two images,
// and its 4 values of a plane are one aligned float4.
template <int kPix, bool kBgr, bool kPlanar>
__global__ void images_to_nchw_kernel(const std::uint8_t* __restrict__ src, float* __restrict__ dst,
                                      long long hw, long long pixels, ImageAffine a) {
  const long long groups = (pixels + kPix - 1) / kPix;
  for (long long g = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long first = g * kPix;
    float v[kPix][3];
    load_pixels<kPix, kBgr, kPlanar>(src, first, pixels, hw, a, v);
    const long long image = first / hw, p = first - image * hw;
    float* out = dst + image * 3 * hw + p;
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      if constexpr (kPix == kGroup) {
        *reinterpret_cast<float4*>(out + c * hw) = make_float4(v[0][c], v[1][c], v[2][c], v[3][c]);
      } else {
#pragma unroll
        for (int i = 0; i < kPix; ++i)
          if (first + i < pixels) out[c * hw + i] = v[i][c];
      }
    }
  }
}

// kN stored values written as one (or a few) vector stores.
template <typename T, int kN>
struct alignas(kN * sizeof(T) < 16 ? kN * sizeof(T) : 16) Packed {
  T v[kN];
};

template <typename T, int kCPad, int kPix, bool kBgr, bool kPlanar>
__global__ void images_to_storage_kernel(const std::uint8_t* __restrict__ src, T* __restrict__ dst,
                                         long long hw, long long pixels, ImageAffine a) {
  const long long groups = (pixels + kPix - 1) / kPix;
  for (long long g = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long first = g * kPix;
    float v[kPix][3];
    load_pixels<kPix, kBgr, kPlanar>(src, first, pixels, hw, a, v);
    Packed<T, kPix * kCPad> out;
#pragma unroll
    for (int i = 0; i < kPix; ++i)
#pragma unroll
      for (int c = 0; c < kCPad; ++c)
        out.v[i * kCPad + c] = from_float<T>(c < 3 ? v[i][c] : 0.0f);
    if (first + kPix <= pixels) {
      reinterpret_cast<Packed<T, kPix * kCPad>*>(dst)[g] = out;
    } else {
      // The batch's last, partial group: pixel by pixel.
      auto* pixel_out = reinterpret_cast<Packed<T, kCPad>*>(dst);
#pragma unroll
      for (int i = 0; i < kPix; ++i)
        if (first + i < pixels) {
          Packed<T, kCPad> one;
#pragma unroll
          for (int c = 0; c < kCPad; ++c)
            one.v[c] = out.v[i * kCPad + c];
          pixel_out[first + i] = one;
        }
    }
  }
}

bool aligned(const void* p, std::uintptr_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

// Checks the shape, pointers and constants shared by both launchers; returns
// the number of pixels.
long long check_args(const char* what, const std::uint8_t* src, const void* dst,
                     const ImageBatchShape& s, const Normalization& norm) {
  if (s.n < 0 || s.h < 0 || s.w < 0)
    fail(ErrorKind::kInvalidArgument, what, ": bad shape n=", s.n, " h=", s.h, " w=", s.w);
  // 2^40 pixels is 3 TB of input: far beyond any device, and no overflow below.
  constexpr long long kMaxPixels = 1LL << 40;
  const long long hw = s.h > 0 && s.w > kMaxPixels / s.h ? kMaxPixels + 1 : s.h * s.w;
  if (hw > kMaxPixels || (s.n > 0 && hw > kMaxPixels / s.n))
    fail(ErrorKind::kInvalidArgument, what, ": n=", s.n, " h=", s.h, " w=", s.w,
         " is too many pixels");
  for (int c = 0; c < 3; ++c)
    if (!std::isfinite(norm.mean[c]) || !std::isfinite(norm.std[c]) || !(norm.std[c] > 0.0f))
      fail(ErrorKind::kInvalidArgument, what, ": channel ", c, " has mean ", norm.mean[c],
           " and std ", norm.std[c], " (need finite values, std > 0)");
  const long long pixels = s.n * hw;
  if (pixels > 0 && (src == nullptr || dst == nullptr))
    fail(ErrorKind::kInvalidArgument, what, ": null ", src == nullptr ? "source" : "destination",
         " for ", pixels, " pixels");
  return pixels;
}

// Calls f with the byte order and source layout as compile-time constants.
template <typename F>
void with_source(const ImageBatchShape& shape, F&& f) {
  const bool bgr = shape.order == ChannelOrder::kBgr;
  const bool planar = shape.layout == PixelLayout::kNchw;
  if (bgr && planar)
    f(std::true_type{}, std::true_type{});
  else if (bgr)
    f(std::true_type{}, std::false_type{});
  else if (planar)
    f(std::false_type{}, std::true_type{});
  else
    f(std::false_type{}, std::false_type{});
}

template <int kPix>
void launch_nchw(const std::uint8_t* src, float* dst, const ImageBatchShape& shape, long long hw,
                 long long pixels, const ImageAffine& a, cudaStream_t stream) {
  const unsigned grid = grid_for((pixels + kPix - 1) / kPix, kThreads);
  with_source(shape, [&](auto bgr, auto planar) {
    images_to_nchw_kernel<kPix, decltype(bgr)::value, decltype(planar)::value>
        <<<grid, kThreads, 0, stream>>>(src, dst, hw, pixels, a);
  });
}

template <typename T, int kCPad>
void launch_storage(const std::uint8_t* src, void* dst, const ImageBatchShape& shape, long long hw,
                    long long pixels, const ImageAffine& a, cudaStream_t stream) {
  T* out = static_cast<T*>(dst);
  const bool groups = aligned(src, 4) && (shape.layout == PixelLayout::kNhwc || hw % kGroup == 0);
  with_source(shape, [&](auto bgr, auto planar) {
    constexpr bool kBgr = decltype(bgr)::value, kPlanar = decltype(planar)::value;
    if (groups)
      images_to_storage_kernel<T, kCPad, kGroup, kBgr, kPlanar>
          <<<grid_for((pixels + kGroup - 1) / kGroup, kThreads), kThreads, 0, stream>>>(
              src, out, hw, pixels, a);
    else
      images_to_storage_kernel<T, kCPad, 1, kBgr, kPlanar>
          <<<grid_for(pixels, kThreads), kThreads, 0, stream>>>(src, out, hw, pixels, a);
  });
}

}  // namespace

// Folded in double so the float constants are the nearest to the exact ones.
ImageAffine fold_normalization(const Normalization& norm) {
  ImageAffine a{};
  for (int c = 0; c < 3; ++c) {
    a.scale[c] = static_cast<float>(1.0 / (255.0 * static_cast<double>(norm.std[c])));
    a.bias[c] = static_cast<float>(-static_cast<double>(norm.mean[c]) / norm.std[c]);
  }
  return a;
}

void images_to_nchw(const std::uint8_t* src, float* dst, const ImageBatchShape& shape,
                    const Normalization& norm, cudaStream_t stream) {
  const long long pixels = check_args("images_to_nchw", src, dst, shape, norm);
  if (pixels == 0) return;
  const long long hw = shape.h * shape.w;
  const ImageAffine a = fold_normalization(norm);
  if (hw % kGroup == 0 && aligned(src, 4) && aligned(dst, 16))
    launch_nchw<kGroup>(src, dst, shape, hw, pixels, a, stream);
  else
    launch_nchw<1>(src, dst, shape, hw, pixels, a, stream);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void images_to_engine_storage(const std::uint8_t* src, void* dst, StorageType dst_type,
                              std::int64_t c_pad, const ImageBatchShape& shape,
                              const Normalization& norm, cudaStream_t stream) {
  const char* what = "images_to_engine_storage";
  const long long pixels = check_args(what, src, dst, shape, norm);
  if (c_pad != 4 && c_pad != 8)
    fail(ErrorKind::kInvalidArgument, what, ": c_pad ", c_pad, " (supported: 4 or 8)");
  if (!aligned(dst, 16))
    fail(ErrorKind::kInvalidArgument, what, ": destination ", dst, " is not 16-byte aligned");
  if (pixels == 0) return;
  const long long hw = shape.h * shape.w;
  const ImageAffine a = fold_normalization(norm);
  switch (dst_type) {
    case StorageType::kFloat32:
      if (c_pad == 4)
        launch_storage<float, 4>(src, dst, shape, hw, pixels, a, stream);
      else
        launch_storage<float, 8>(src, dst, shape, hw, pixels, a, stream);
      break;
    case StorageType::kFloat16:
      if (c_pad == 4)
        launch_storage<__half, 4>(src, dst, shape, hw, pixels, a, stream);
      else
        launch_storage<__half, 8>(src, dst, shape, hw, pixels, a, stream);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
