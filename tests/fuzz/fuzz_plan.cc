// libFuzzer target for the plan file reader: any bytes must either read as a
// plan or raise anvil::Error. A crash, a sanitizer report, a hang, a huge
// allocation or any other exception is a bug. A plan that reads must also
// write and read back unchanged.
//
// The first input byte picks what the rest is, so that mutations get past
// the checksum (which a fuzzer cannot forge) into the metadata checks:
//   0: a whole plan file, as is
//   1: a whole plan file whose checksum is recomputed
//   2: metadata text, wrapped in a valid container with a 4 KiB weights blob
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "anvil/error.h"
#include "plan/plan.h"
#include "plan/plan_container.h"

namespace {

using namespace anvil::plan;

constexpr std::size_t kChecksumAt = 40;

std::vector<std::byte> with_checksum(std::span<const std::byte> bytes) {
  std::vector<std::byte> out(bytes.begin(), bytes.end());
  if (out.size() < kHeaderSize) return out;
  const std::uint64_t sum = fnv1a64(std::span(out).subspan(kHeaderSize));
  for (std::size_t i = 0; i < 8; ++i)
    out[kChecksumAt + i] = static_cast<std::byte>(sum >> (8 * i));
  return out;
}

std::vector<std::byte> wrapped_metadata(std::span<const std::byte> text) {
  const std::vector<std::byte> weights(4096, std::byte{0x3c});
  return pack_plan_file({reinterpret_cast<const char*>(text.data()), text.size()}, weights);
}

void read_and_round_trip(std::span<const std::byte> bytes) {
  Plan plan;
  try {
    plan = deserialize_plan(bytes, "fuzz input");
  } catch (const anvil::Error&) {
    return;  // the reader's documented way to refuse a file
  }
  // What was read is valid, so it must write, read back equal and be
  // compatible with its own target.
  if (deserialize_plan(serialize_plan(plan), "round trip") != plan) std::abort();
  check_compatible(plan, plan.target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      read_and_round_trip(rest);
      break;
    case 1:
      read_and_round_trip(with_checksum(rest));
      break;
    default:
      read_and_round_trip(wrapped_metadata(rest));
      break;
  }
  return 0;
}
