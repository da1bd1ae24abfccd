// Writes the plan fuzzer's seed corpus: the small test plan in each of
// fuzz_plan.cc's three input modes (whole file, whole file with a recomputed
// checksum, metadata only), so mutations start from a valid plan.
//
//   make_plan_seed_corpus SEED_DIR
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "plan/plan.h"
#include "plan/plan_container.h"
#include "plan/plan_metadata.h"
#include "plan_test_util.h"

namespace {

void write_seed(const std::filesystem::path& path, char mode, std::span<const std::byte> body) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.put(mode);
  out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    anvil::plan::Plan plan = anvil::testing::small_plan();
    const auto file = anvil::plan::serialize_plan(plan);
    write_seed(dir / "plan_file", 0, file);
    write_seed(dir / "plan_file_resummed", 1, file);
    const std::string metadata = anvil::plan::to_metadata(plan);
    write_seed(dir / "plan_metadata", 2,
               {reinterpret_cast<const std::byte*>(metadata.data()), metadata.size()});
    // A static-batch plan: no profiles, no padding.
    for (auto& tensor : plan.tensors)
      tensor.dims[0] = 1;
    plan.tensors[0].channel_padding_to.reset();
    plan.profiles.clear();
    const std::string static_metadata = anvil::plan::to_metadata(plan);
    write_seed(
        dir / "plan_metadata_static", 2,
        {reinterpret_cast<const std::byte*>(static_metadata.data()), static_metadata.size()});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_plan_seed_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
