// A fresh directory under the system temp folder, removed with its contents
// on destruction: where `anvil eval` puts the plans and calibration caches
// it makes, and where the tests write their files. The name given is
// followed by the process id and a per-process count, so two directories
// never share a path, also across test processes run in parallel.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace anvil::io {

class ScratchDir {
 public:
  // Creates <temp>/<name>_<pid>_<n>; kIo when it cannot.
  explicit ScratchDir(std::string_view name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `bytes` to `name` inside the directory (creating its folders) and
  // returns the file's path; kIo when it cannot.
  std::filesystem::path write(const std::string& name, std::string_view bytes) const;

 private:
  std::filesystem::path path_;
};

}  // namespace anvil::io
