#include "plan/plan_container.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

#include "anvil/error.h"
#include "plan/plan.h"

namespace anvil::plan {
namespace {

constexpr std::array<char, 8> kMagic = {'A', 'N', 'V', 'L', 'P', 'L', 'A', 'N'};

// Byte offsets of the header fields (docs/FORMAT.md).
constexpr std::size_t kVersionAt = 8;
constexpr std::size_t kHeaderSizeAt = 12;
constexpr std::size_t kMetadataSizeAt = 16;
constexpr std::size_t kWeightsOffsetAt = 24;
constexpr std::size_t kWeightsSizeAt = 32;
constexpr std::size_t kChecksumAt = 40;
constexpr std::size_t kReservedAt = 48;

// Little-endian regardless of the host, so a plan moves between machines.
template <typename T>
void put(std::vector<std::byte>& out, std::size_t at, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out[at + i] = static_cast<std::byte>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xff);
}

template <typename T>
T get(std::span<const std::byte> in, std::size_t at) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<std::uint64_t>(in[at + i]) << (8 * i);
  return static_cast<T>(value);
}

std::uint64_t round_up(std::uint64_t n, std::uint64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

void check_magic(std::span<const std::byte> bytes, std::string_view label) {
  if (bytes.empty())
    fail(ErrorKind::kInvalidArgument, label, ": empty file, not an Anvil plan file");
  const std::size_t n = std::min(bytes.size(), kMagic.size());
  if (std::memcmp(bytes.data(), kMagic.data(), n) != 0)
    fail(ErrorKind::kInvalidArgument, label,
         ": not an Anvil plan file (it does not start with \"ANVLPLAN\")");
  if (bytes.size() < kHeaderSize)
    fail(ErrorKind::kInvalidArgument, label, ": truncated plan file: ", bytes.size(),
         " bytes, shorter than the ", kHeaderSize, "-byte header (", kHeaderSize - bytes.size(),
         " bytes missing)");
}

void check_version(std::span<const std::byte> bytes, std::string_view label) {
  const auto version = get<std::uint32_t>(bytes, kVersionAt);
  if (version != kFormatVersion)
    fail(ErrorKind::kIncompatible, label, ": plan format version ", version, " was written by ",
         version > kFormatVersion ? "a newer" : "an older", " Anvil; this build reads version ",
         kFormatVersion, " only: rebuild the plan with this Anvil's `anvil build`");
  const auto header_size = get<std::uint32_t>(bytes, kHeaderSizeAt);
  if (header_size != kHeaderSize)
    fail(ErrorKind::kInvalidArgument, label, ": corrupted plan header: header_size is ",
         header_size, ", format version ", kFormatVersion, " has ", kHeaderSize);
  for (std::size_t i = kReservedAt; i < kHeaderSize; ++i)
    if (bytes[i] != std::byte{0})
      fail(ErrorKind::kInvalidArgument, label, ": corrupted plan header: reserved byte ", i,
           " is not zero");
}

// Checks the section sizes against each other and the input length, so no
// header field can drive an allocation or a read past the end.
void check_sections(std::span<const std::byte> bytes, std::string_view label) {
  const auto metadata_size = get<std::uint64_t>(bytes, kMetadataSizeAt);
  const auto weights_offset = get<std::uint64_t>(bytes, kWeightsOffsetAt);
  const auto weights_size = get<std::uint64_t>(bytes, kWeightsSizeAt);
  if (weights_offset % kWeightsAlignment != 0)
    fail(ErrorKind::kInvalidArgument, label, ": corrupted plan header: weights_offset ",
         weights_offset, " is not a multiple of ", kWeightsAlignment);
  if (metadata_size == 0 || weights_offset < kHeaderSize ||
      metadata_size > weights_offset - kHeaderSize)
    fail(ErrorKind::kInvalidArgument, label, ": corrupted plan header: ", metadata_size,
         " bytes of metadata do not fit between the header and weights_offset ", weights_offset);
  if (weights_size > std::numeric_limits<std::uint64_t>::max() - weights_offset)
    fail(ErrorKind::kInvalidArgument, label, ": corrupted plan header: weights_size ", weights_size,
         " overflows");
  const std::uint64_t end = weights_offset + weights_size;
  if (end > bytes.size())
    fail(ErrorKind::kInvalidArgument, label, ": truncated plan file: the header promises ", end,
         " bytes, the file has ", bytes.size(), " (", end - bytes.size(), " bytes missing)");
  if (end < bytes.size())
    fail(ErrorKind::kInvalidArgument, label, ": corrupted plan file: ", bytes.size() - end,
         " unexpected bytes after the weights (the header promises ", end, " bytes)");
}

}  // namespace

std::uint64_t fnv1a64(std::span<const std::byte> bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const std::byte b : bytes) {
    hash ^= static_cast<std::uint64_t>(b);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::vector<std::byte> pack_plan_file(std::string_view metadata,
                                      std::span<const std::byte> weights) {
  const std::uint64_t weights_offset = round_up(kHeaderSize + metadata.size(), kWeightsAlignment);
  std::vector<std::byte> out(weights_offset + weights.size());
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  put<std::uint32_t>(out, kVersionAt, kFormatVersion);
  put<std::uint32_t>(out, kHeaderSizeAt, kHeaderSize);
  put<std::uint64_t>(out, kMetadataSizeAt, metadata.size());
  put<std::uint64_t>(out, kWeightsOffsetAt, weights_offset);
  put<std::uint64_t>(out, kWeightsSizeAt, weights.size());
  if (!metadata.empty()) std::memcpy(out.data() + kHeaderSize, metadata.data(), metadata.size());
  if (!weights.empty()) std::memcpy(out.data() + weights_offset, weights.data(), weights.size());
  put<std::uint64_t>(out, kChecksumAt, fnv1a64(std::span(out).subspan(kHeaderSize)));
  return out;
}

PlanSections unpack_plan_file(std::span<const std::byte> bytes, std::string_view label) {
  check_magic(bytes, label);
  check_version(bytes, label);
  check_sections(bytes, label);
  const auto stored = get<std::uint64_t>(bytes, kChecksumAt);
  const auto actual = fnv1a64(bytes.subspan(kHeaderSize));
  if (stored != actual)
    fail(ErrorKind::kInvalidArgument, label,
         ": corrupted plan file: checksum mismatch (the header says ", std::hex, stored,
         ", the contents hash to ", actual, "): copy or rebuild the plan");
  const auto metadata_size = get<std::uint64_t>(bytes, kMetadataSizeAt);
  const auto weights_offset = get<std::uint64_t>(bytes, kWeightsOffsetAt);
  const auto padding =
      bytes.subspan(kHeaderSize + metadata_size, weights_offset - kHeaderSize - metadata_size);
  if (std::any_of(padding.begin(), padding.end(), [](std::byte b) { return b != std::byte{0}; }))
    fail(ErrorKind::kInvalidArgument, label,
         ": corrupted plan file: the padding before the weights is not zero");
  return {
      std::string_view(reinterpret_cast<const char*>(bytes.data()) + kHeaderSize, metadata_size),
      bytes.subspan(weights_offset)};
}

}  // namespace anvil::plan
