// The plan file's container: round trips, and every way bytes can be wrong
// (truncated, flipped, not a plan, another format version) is one Error.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "anvil/error.h"
#include "plan/plan.h"
#include "plan/plan_container.h"
#include "plan/profiles.h"
#include "plan_test_util.h"

namespace anvil::plan {
namespace {

using anvil::testing::small_plan;

constexpr std::string_view kLabel = "dir/model.plan";

std::uint64_t read_u64(const std::vector<std::byte>& bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(bytes[at + i]) << (8 * i);
  return v;
}

// The Error deserialize_plan raises for `bytes`; fails the test if none.
Error error_for(std::span<const std::byte> bytes) {
  try {
    deserialize_plan(bytes, kLabel);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "deserialize_plan accepted bad bytes";
  return Error(ErrorKind::kInternal, "no error");
}

bool starts_with_label(const Error& e) {
  return std::string_view(e.what()).starts_with(kLabel);
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(PlanFormat, RoundTripKeepsEveryField) {
  const Plan plan = small_plan();
  const Plan back = deserialize_plan(serialize_plan(plan), kLabel);
  EXPECT_EQ(back.anvil_version, plan.anvil_version);
  EXPECT_EQ(back.target, plan.target);
  EXPECT_EQ(back.options, plan.options);
  EXPECT_EQ(back.tensors, plan.tensors);
  EXPECT_EQ(back.io, plan.io);
  EXPECT_EQ(back.profiles, plan.profiles);
  ASSERT_EQ(back.layers.size(), 2u);
  EXPECT_EQ(back.layers[0], plan.layers[0]);
  EXPECT_EQ(back.layers[1], plan.layers[1]);
  EXPECT_EQ(back.weights, plan.weights);
  EXPECT_EQ(back, plan);
}

TEST(PlanFormat, RoundTripThroughAFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("anvil_plan_test_" +
                     std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".plan");
  write_plan_file(path, small_plan());
  const Plan back = read_plan_file(path);
  std::filesystem::remove(path);
  EXPECT_EQ(back, small_plan());
}

TEST(PlanFormat, MissingFileIsAnIoErrorNamingIt) {
  try {
    read_plan_file("/nonexistent/dir/model.plan");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.plan"), std::string::npos);
  }
}

TEST(PlanFormat, ParamsAndTacticComeBackCompact) {
  Plan plan = small_plan();
  plan.layers[0].params = R"({ "strides" : [2, 2],  "pads": [0,0,0,0] })";
  const Plan back = deserialize_plan(serialize_plan(plan), kLabel);
  EXPECT_EQ(back.layers[0].params, R"({"pads":[0,0,0,0],"strides":[2,2]})");
}

// A compiled tactic holds cuDNN's own serialization: 60-70 KB of JSON text
// with quotes, backslashes and possibly its terminating NUL. It must come
// back byte for byte.
TEST(PlanFormat, CompiledTacticsComeBackByteForByte) {
  Plan plan = small_plan();
  set_tactic(plan.layers[0], 0, "i32:eng4:24=26", 0.05f);
  std::string text = R"({"cudnnVersion":91400,"a\b":"q\"uote"})";
  text += std::string(70000, 'x');
  text.push_back('\0');
  set_tactic_compiled(plan.layers[0], 0, {"int8 conv x[128,56,56,64]", text});
  const Plan back = deserialize_plan(serialize_plan(plan), kLabel);
  const auto compiled = tactic_compiled(back.layers[0], 0);
  ASSERT_TRUE(compiled);
  EXPECT_EQ(compiled->shape, "int8 conv x[128,56,56,64]");
  EXPECT_EQ(compiled->cudnn, text);
  EXPECT_EQ(tactic_identity(back.layers[0], 0), "i32:eng4:24=26");
}

TEST(PlanFormat, HeaderLayoutIsAsDocumented) {
  const std::vector<std::byte> bytes = serialize_plan(small_plan());
  ASSERT_GE(bytes.size(), kHeaderSize);
  EXPECT_EQ(std::memcmp(bytes.data(), "ANVLPLAN", 8), 0);
  EXPECT_EQ(read_u64(bytes, 8) & 0xffffffff, 1u);  // format_version
  EXPECT_EQ(read_u64(bytes, 8) >> 32, 64u);        // header_size
  const std::uint64_t metadata_size = read_u64(bytes, 16);
  const std::uint64_t weights_offset = read_u64(bytes, 24);
  EXPECT_EQ(weights_offset % 256, 0u);
  EXPECT_GE(weights_offset, 64 + metadata_size);
  EXPECT_EQ(read_u64(bytes, 32), small_plan().weights.size());
  EXPECT_EQ(weights_offset + read_u64(bytes, 32), bytes.size());
  EXPECT_EQ(read_u64(bytes, 40), fnv1a64(std::span(bytes).subspan(64)));
  EXPECT_EQ(read_u64(bytes, 48), 0u);
  EXPECT_EQ(read_u64(bytes, 56), 0u);
  EXPECT_EQ(bytes[64], std::byte{'{'});  // metadata is JSON
}

TEST(PlanFormat, Fnv1aMatchesTheReferenceValues) {
  EXPECT_EQ(fnv1a64({}), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64(as_bytes("a")), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64(as_bytes("foobar")), 0x85944171f73967e8ULL);
}

TEST(PlanFormat, TruncationAtEveryByteSaysHowMuchIsMissing) {
  const std::vector<std::byte> bytes = serialize_plan(small_plan());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Error e = error_for(std::span(bytes).first(n));
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << "cut at " << n;
    EXPECT_TRUE(starts_with_label(e)) << e.what();
    if (n == 0) continue;  // "empty file"
    const std::string missing =
        std::to_string(n < kHeaderSize ? kHeaderSize - n : bytes.size() - n);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(missing + " bytes missing"), std::string::npos)
        << e.what();
  }
}

TEST(PlanFormat, FlippingAnyByteAfterTheHeaderIsAChecksumError) {
  const std::vector<std::byte> good = serialize_plan(small_plan());
  for (std::size_t i = kHeaderSize; i < good.size(); ++i) {
    std::vector<std::byte> bytes = good;
    bytes[i] ^= std::byte{0x01};
    const Error e = error_for(bytes);
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("corrupted plan file: checksum mismatch"),
              std::string::npos)
        << "byte " << i << ": " << e.what();
  }
}

TEST(PlanFormat, FlippingAnyHeaderBitOrByteIsAnError) {
  const std::vector<std::byte> good = serialize_plan(small_plan());
  for (const std::byte mask : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
    for (std::size_t i = 0; i < kHeaderSize; ++i) {
      std::vector<std::byte> bytes = good;
      bytes[i] ^= mask;
      const Error e = error_for(bytes);
      EXPECT_TRUE(starts_with_label(e)) << "byte " << i << ": " << e.what();
    }
  }
}

TEST(PlanFormat, WrongMagicIsNotAPlan) {
  std::vector<std::byte> bytes = serialize_plan(small_plan());
  std::memcpy(bytes.data(), "ONNXPLAN", 8);
  const Error e = error_for(bytes);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(std::string(e.what()),
            "dir/model.plan: not an Anvil plan file (it does not start with \"ANVLPLAN\")");
  // An ONNX model handed over by mistake: protobuf bytes.
  EXPECT_EQ(error_for(as_bytes("\x08\x07\x12\x07pytorch")).kind(), ErrorKind::kInvalidArgument);
}

TEST(PlanFormat, AnotherFormatVersionIsIncompatibleAndSaysWhichIsRead) {
  std::vector<std::byte> bytes = serialize_plan(small_plan());
  bytes[8] = std::byte{2};
  Error e = error_for(bytes);
  EXPECT_EQ(e.kind(), ErrorKind::kIncompatible);
  EXPECT_NE(std::string(e.what()).find("plan format version 2 was written by a newer Anvil"),
            std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find("reads version 1 only"), std::string::npos) << e.what();
  bytes[8] = std::byte{0};
  e = error_for(bytes);
  EXPECT_EQ(e.kind(), ErrorKind::kIncompatible);
  EXPECT_NE(std::string(e.what()).find("an older Anvil"), std::string::npos) << e.what();
}

TEST(PlanFormat, HeaderSizeMismatchIsCorruption) {
  std::vector<std::byte> bytes = serialize_plan(small_plan());
  bytes[12] = std::byte{128};
  const Error e = error_for(bytes);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("header_size is 128"), std::string::npos) << e.what();
}

TEST(PlanFormat, TrailingBytesAreCorruption) {
  std::vector<std::byte> bytes = serialize_plan(small_plan());
  bytes.resize(bytes.size() + 3);
  const Error e = error_for(bytes);
  EXPECT_NE(std::string(e.what()).find("3 unexpected bytes after the weights"), std::string::npos)
      << e.what();
}

TEST(PlanFormat, HugeSizesInTheHeaderDoNotAllocate) {
  std::vector<std::byte> bytes = serialize_plan(small_plan());
  for (std::size_t i = 32; i < 40; ++i)
    bytes[i] = std::byte{0xff};  // weights_size = 2^64-1
  const Error e = error_for(bytes);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("overflows"), std::string::npos) << e.what();
  bytes[39] = std::byte{0x00};  // 2^56-1: fits, far beyond the file
  EXPECT_NE(std::string(error_for(bytes).what()).find("bytes missing"), std::string::npos);
}

TEST(PlanFormat, NonZeroPaddingIsCorruptionEvenWithAGoodChecksum) {
  const Plan plan = small_plan();
  std::vector<std::byte> bytes = serialize_plan(plan);
  const std::uint64_t padding_at = 64 + read_u64(bytes, 16);
  ASSERT_LT(padding_at, read_u64(bytes, 24));
  bytes[padding_at] = std::byte{'x'};
  const std::uint64_t sum = fnv1a64(std::span(bytes).subspan(64));
  for (std::size_t i = 0; i < 8; ++i)
    bytes[40 + i] = static_cast<std::byte>(sum >> (8 * i));
  EXPECT_NE(std::string(error_for(bytes).what()).find("padding"), std::string::npos);
}

}  // namespace
}  // namespace anvil::plan
