#include "io/chrome_trace.h"

#include <algorithm>
#include <fstream>

#include "anvil/error.h"

namespace anvil::io {

namespace {

constexpr int kProcess = 1;

}  // namespace

void ChromeTrace::add(std::string_view track, std::string_view name, double start_us,
                      double duration_us, nlohmann::json args) {
  auto it = std::find(tracks_.begin(), tracks_.end(), track);
  if (it == tracks_.end()) it = tracks_.insert(tracks_.end(), std::string(track));
  const auto tid = static_cast<int>(it - tracks_.begin()) + 1;
  events_.push_back({{"name", name},
                     {"ph", "X"},
                     {"pid", kProcess},
                     {"tid", tid},
                     {"ts", start_us},
                     {"dur", std::max(duration_us, 0.0)},
                     {"args", std::move(args)}});
}

nlohmann::json ChromeTrace::to_json() const {
  nlohmann::json events = nlohmann::json::array();
  events.push_back(
      {{"name", "process_name"}, {"ph", "M"}, {"pid", kProcess}, {"args", {{"name", "anvil"}}}});
  for (std::size_t i = 0; i < tracks_.size(); ++i) {
    const int tid = static_cast<int>(i) + 1;
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", kProcess},
                      {"tid", tid},
                      {"args", {{"name", tracks_[i]}}}});
    events.push_back({{"name", "thread_sort_index"},
                      {"ph", "M"},
                      {"pid", kProcess},
                      {"tid", tid},
                      {"args", {{"sort_index", tid}}}});
  }
  for (const nlohmann::json& e : events_)
    events.push_back(e);
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

void ChromeTrace::write(const std::filesystem::path& path) const {
  std::ofstream out(path);
  if (!out) fail(ErrorKind::kIo, path.string(), ": cannot open the trace file for writing");
  out << to_json().dump();
  out.flush();
  if (!out) fail(ErrorKind::kIo, path.string(), ": writing the trace failed");
}

}  // namespace anvil::io
