// A timeline in the Chrome trace event format, which chrome://tracing and
// Perfetto (ui.perfetto.dev) open: complete events ("ph": "X") on named
// tracks, times in microseconds. `anvil run --export-trace` writes one.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace anvil::io {

class ChromeTrace {
 public:
  // Adds `name` on `track` (a row of the viewer, created on first use, rows
  // in order of creation) from `start_us` for `duration_us`; `args` shows
  // when the event is selected.
  void add(std::string_view track, std::string_view name, double start_us, double duration_us,
           nlohmann::json args = nlohmann::json::object());
  // Events added so far.
  std::size_t size() const { return events_.size(); }
  // The whole document: {"traceEvents": [...], "displayTimeUnit": "ms"}, with
  // a name event per track.
  nlohmann::json to_json() const;
  // Writes to_json() to `path`; kIo naming the file when it cannot.
  void write(const std::filesystem::path& path) const;

 private:
  std::vector<std::string> tracks_;  // a track's thread id is its index + 1
  std::vector<nlohmann::json> events_;
};

}  // namespace anvil::io
