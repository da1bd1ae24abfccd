// The calibration cache: per-tensor amax saved after calibration, so that a
// rebuild of the same model with the same calibrator skips calibration.
//
// File format, version 1: text, lines end in '\n' (optional after "end"; a
// '\r' before it is ignored):
//
//   anvil-calibration-cache 1
//   calibrator <calibrator signature, e.g. "entropy levels=128 ...">
//   fingerprint <model fingerprint: any text the builder chooses>
//   tensors <N>
//   <amax> <tensor name>          <- exactly N lines, sorted by name
//   end
//
// Every field runs from after its keyword's single space to the end of the
// line, so signatures, fingerprints and tensor names may contain spaces (not
// line breaks, and not empty). <amax> is the float's shortest decimal form
// (std::to_chars), which reads back bit-exact; it is finite and >= 0. The
// INT8 scale is int8_scale(amax) from calibrator.h; the file stores amax
// because it does not depend on the target integer type.
//
// Errors: a file that cannot be opened, read or written is ErrorKind::kIo; a
// malformed or truncated file (no 'end', fewer lines than N, a bad number, a
// duplicate name, text after 'end', another version) is kInvalidArgument;
// both name the file, and the line for content errors ("path:LINE: ...").
// A well-formed cache made for another model or calibrator is not an error:
// load_calibration_cache() reports it as CacheStatus::kStale, so the builder
// recalibrates and overwrites it.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace anvil::quant {

struct CalibrationTable {
  std::string calibrator;             // Calibrator::signature() of the calibrator used
  std::string fingerprint;            // identifies the model (and anything else that matters)
  std::map<std::string, float> amax;  // tensor name -> amax

  bool operator==(const CalibrationTable&) const = default;
};

// Writes `table` to `path` through a temporary file renamed into place, so an
// interrupted write never leaves a truncated cache. Throws kInvalidArgument
// for a field the format cannot hold, kIo when writing fails.
void write_calibration_cache(const std::filesystem::path& path, const CalibrationTable& table);

// Reads the cache at `path` whatever its calibrator and fingerprint.
CalibrationTable read_calibration_cache(const std::filesystem::path& path);

enum class CacheStatus {
  kHit,      // table holds the cached amax values: skip calibration
  kMissing,  // no file at the path: calibrate, then write the cache
  kStale,    // made for another calibrator or fingerprint: recalibrate
};

struct CacheLookup {
  CacheStatus status = CacheStatus::kMissing;
  CalibrationTable table;  // filled for kHit and kStale
  std::string reason;      // for kMissing and kStale: what differs, for logs
};

// Looks up the cache for this build; a corrupt file still throws (see above).
CacheLookup load_calibration_cache(const std::filesystem::path& path, std::string_view fingerprint,
                                   std::string_view calibrator_signature);

}  // namespace anvil::quant
