#include "quant/calibration_cache.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>

#include "anvil/error.h"

namespace anvil::quant {

namespace {

constexpr std::string_view kMagic = "anvil-calibration-cache 1";
constexpr std::string_view kMagicPrefix = "anvil-calibration-cache ";

std::string format_amax(float amax) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, amax);
  return std::string(buffer, result.ptr);
}

void check_field(const std::filesystem::path& path, std::string_view what, std::string_view value) {
  if (value.empty() || value.find_first_of("\r\n") != std::string_view::npos)
    fail(ErrorKind::kInvalidArgument, path.string(), ": cannot write calibration cache: ", what,
         " '", value, "' is empty or contains a line break");
}

void check_table(const std::filesystem::path& path, const CalibrationTable& table) {
  check_field(path, "calibrator", table.calibrator);
  check_field(path, "fingerprint", table.fingerprint);
  for (const auto& [name, amax] : table.amax) {
    check_field(path, "tensor name", name);
    if (!std::isfinite(amax) || amax < 0.0f)
      fail(ErrorKind::kInvalidArgument, path.string(),
           ": cannot write calibration cache: amax of tensor '", name, "' is ", amax,
           " (must be finite and >= 0)");
  }
}

// Hands out the file's lines, numbered from 1, for "path:LINE: ..." errors.
class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& path) : path_(path), in_(path) {
    std::error_code ec;
    if (!in_ || std::filesystem::is_directory(path_, ec))
      fail(ErrorKind::kIo, path_.string(), ": cannot open calibration cache for reading");
  }

  // The next line without its line break; nullopt at the end of the file.
  std::optional<std::string> next() {
    std::string line;
    if (!std::getline(in_, line)) {
      if (in_.bad()) fail(ErrorKind::kIo, path_.string(), ": read error");
      return std::nullopt;
    }
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // The writer refuses fields with a line break, so a '\r' left inside a
    // line is a corrupt file (found by fuzz_calibration_cache).
    if (line.find('\r') != std::string::npos)
      error("a carriage return inside the line: '", line, "'");
    return line;
  }

  // The next line, which must exist: its absence means a truncated file.
  std::string expect(std::string_view what) {
    auto line = next();
    if (!line)
      fail(ErrorKind::kInvalidArgument, path_.string(), ":", line_number_ + 1,
           ": truncated calibration cache: expected ", what, ", found the end of the file");
    return *line;
  }

  // The text after "<keyword> " on the next line.
  std::string expect_field(std::string_view keyword) {
    const std::string line = expect(cat("'", keyword, " ...'"));
    const std::string prefix = cat(keyword, " ");
    if (!line.starts_with(prefix) || line.size() == prefix.size())
      error("expected '", keyword, " <value>', found '", line, "'");
    return line.substr(prefix.size());
  }

  template <typename... Parts>
  [[noreturn]] void error(const Parts&... parts) const {
    fail(ErrorKind::kInvalidArgument, path_.string(), ":", line_number_, ": ", parts...);
  }

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  int line_number_ = 0;
};

std::size_t parse_count(LineReader& reader, const std::string& text) {
  std::size_t count = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), count);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size())
    reader.error("tensor count '", text, "' is not a non-negative integer");
  return count;
}

void parse_entry(LineReader& reader, const std::string& line, CalibrationTable& table) {
  const std::size_t space = line.find(' ');
  if (space == std::string::npos || space + 1 == line.size())
    reader.error("expected '<amax> <tensor name>', found '", line, "'");
  float amax = 0.0f;
  const auto result = std::from_chars(line.data(), line.data() + space, amax);
  if (result.ec != std::errc() || result.ptr != line.data() + space || !std::isfinite(amax) ||
      amax < 0.0f)
    reader.error("amax '", line.substr(0, space), "' is not a finite number >= 0");
  if (!table.amax.emplace(line.substr(space + 1), amax).second)
    reader.error("tensor '", line.substr(space + 1), "' appears twice");
}

}  // namespace

void write_calibration_cache(const std::filesystem::path& path, const CalibrationTable& table) {
  check_table(path, table);
  std::filesystem::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail(ErrorKind::kIo, temp.string(), ": cannot open for writing");
    out << kMagic << "\ncalibrator " << table.calibrator << "\nfingerprint " << table.fingerprint
        << "\ntensors " << table.amax.size() << "\n";
    for (const auto& [name, amax] : table.amax)
      out << format_amax(amax) << ' ' << name << '\n';
    out << "end\n";
    out.close();
    if (!out) fail(ErrorKind::kIo, temp.string(), ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec)
    fail(ErrorKind::kIo, path.string(), ": cannot move ", temp.string(),
         " into place: ", ec.message());
}

CalibrationTable read_calibration_cache(const std::filesystem::path& path) {
  LineReader reader(path);
  const std::string magic = reader.expect("the header line");
  if (magic != kMagic) {
    if (magic.starts_with(kMagicPrefix))
      reader.error("unsupported calibration cache version '", magic.substr(kMagicPrefix.size()),
                   "' (this build reads version 1)");
    reader.error("not an Anvil calibration cache (first line '", magic, "')");
  }
  CalibrationTable table;
  table.calibrator = reader.expect_field("calibrator");
  table.fingerprint = reader.expect_field("fingerprint");
  const std::size_t count = parse_count(reader, reader.expect_field("tensors"));
  for (std::size_t k = 0; k < count; ++k)
    parse_entry(reader, reader.expect(cat("tensor ", k + 1, " of ", count)), table);
  if (const std::string end = reader.expect("'end'"); end != "end")
    reader.error("expected 'end' after ", count, " tensors, found '", end, "'");
  if (reader.next()) reader.error("unexpected text after 'end'");
  return table;
}

CacheLookup load_calibration_cache(const std::filesystem::path& path, std::string_view fingerprint,
                                   std::string_view calibrator_signature) {
  CacheLookup lookup;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    lookup.reason = cat(path.string(), ": no calibration cache yet");
    return lookup;
  }
  lookup.table = read_calibration_cache(path);
  if (lookup.table.calibrator != calibrator_signature) {
    lookup.status = CacheStatus::kStale;
    lookup.reason = cat(path.string(), ": made by calibrator '", lookup.table.calibrator,
                        "', this build uses '", calibrator_signature, "'");
  } else if (lookup.table.fingerprint != fingerprint) {
    lookup.status = CacheStatus::kStale;
    lookup.reason = cat(path.string(), ": made for model fingerprint '", lookup.table.fingerprint,
                        "', this model is '", fingerprint, "'");
  } else {
    lookup.status = CacheStatus::kHit;
  }
  return lookup;
}

}  // namespace anvil::quant
