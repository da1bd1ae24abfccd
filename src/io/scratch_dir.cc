#include "io/scratch_dir.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <system_error>

#include "anvil/error.h"

namespace anvil::io {

namespace {

std::atomic<unsigned> next_id{0};

}  // namespace

ScratchDir::ScratchDir(std::string_view name)
    : path_(std::filesystem::temp_directory_path() /
            cat(name, "_", ::getpid(), "_", next_id.fetch_add(1))) {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // a stale one of a process with this pid
  if (!std::filesystem::create_directories(path_, ec) || ec)
    fail(ErrorKind::kIo, "cannot create the scratch directory ", path_.string(), ": ",
         ec ? ec.message() : "it exists");
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path ScratchDir::write(const std::string& name, std::string_view bytes) const {
  const std::filesystem::path file = path_ / name;
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail(ErrorKind::kIo, "cannot write ", file.string());
  return file;
}

}  // namespace anvil::io
