// io::ScratchDir: a fresh, unique directory per object, gone with it.
#include "io/scratch_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace anvil::io {
namespace {

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ScratchDir, IsFreshUniqueAndRemovedWithItsFiles) {
  std::filesystem::path kept;
  {
    const ScratchDir a("anvil_scratch_dir_test");
    const ScratchDir b("anvil_scratch_dir_test");
    EXPECT_NE(a.path(), b.path()) << "the same name twice in one process";
    ASSERT_TRUE(std::filesystem::is_directory(a.path()));
    EXPECT_TRUE(std::filesystem::is_empty(a.path()));
    EXPECT_EQ(a.path().parent_path(), std::filesystem::temp_directory_path());
    const std::string bytes("x\0y", 3);
    const std::filesystem::path file = a.write("sub/dir/f.bin", bytes);
    EXPECT_EQ(file, a.path() / "sub/dir/f.bin");
    EXPECT_EQ(read(file), bytes);
    kept = a.path();
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

}  // namespace
}  // namespace anvil::io
