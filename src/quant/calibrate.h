// Post-training INT8 calibration: run a model on calibration batches with the
// CPU reference runtime, collect the |x| histogram of every tensor an INT8
// engine quantizes, and turn each into amax with a Calibrator.
//
// What is calibrated (calibrated_values()): the activations that INT8
// convolutions and matrix products read, i.e. the tensors whose scale the
// engine needs because they are not known before run time:
//   - every float32 graph input;
//   - Conv and anvil::FusedConv: input 0 (X) and FusedConv's residual
//     (input 3, added to the INT8 result in the epilogue);
//   - Gemm, anvil::FusedGemm, MatMul: inputs 0 and 1 (A, B);
// each only when it is a non-constant float32 value. Weights are constants:
// their per-channel scales come from the weights themselves. Biases stay in
// higher precision, and the outputs of the last layers are not read by a
// quantized layer, so neither is calibrated.
//
// Pass the graph the engine is built from (imported, then optimized with the
// default passes::PassManager), so that the names in the table are the names
// the builder looks up: a calibration of the unoptimized graph may name
// tensors that the passes remove (a BatchNormalization output folded into
// its Conv) and miss the ones they create.
//
// Histograms: one pass over the data with quant::Histogram's growing range
// (lossless merging when a later batch has a larger max; MinMax is exact).
//
// Fingerprint (calibration_fingerprint()): "model=<FNV-1a 64 of the model
// file, 16 hex digits> input=<name>:<shape>[;...] bins=<N>", e.g.
// "model=3f2a... input=input:[8,3,224,224] bins=2048". The model bytes decide
// the tensors and their values; the batch shape and bin count decide the
// growing histograms. The data itself is not hashed: point --data elsewhere
// and the cache still hits; delete it to recalibrate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "quant/batch_source.h"
#include "quant/calibration_cache.h"
#include "quant/calibrator.h"
#include "quant/histogram.h"

namespace anvil::quant {

// FNV-1a 64-bit hash of `bytes` as 16 lower-case hex digits: stable across
// runs, machines and builds.
std::string fnv1a64_hex(std::span<const std::byte> bytes);
// The same hash of a file's bytes; kIo naming the file if it cannot be read.
std::string hash_file(const std::filesystem::path& path);

// The fingerprint described above, from the model's hash, the shape of every
// input's batches (by name) and the number of histogram bins.
std::string calibration_fingerprint(std::string_view model_hash,
                                    const std::map<std::string, Extents>& input_shapes,
                                    int num_bins);

// The values calibrate() collects for `graph` (see above), in graph order:
// graph inputs first, then each value at its first reader.
std::vector<const ir::Value*> calibrated_values(const ir::Graph& graph);

// Called after each batch with (batches done, batches in all).
using CalibrationProgress = std::function<void(std::size_t done, std::size_t total)>;

struct CalibrateOptions {
  // hash_file() of the model file (or any stable identifier of the model for
  // graphs built in memory); required: it goes into the fingerprint.
  std::string model_hash;
  int num_bins = Histogram::kDefaultBins;  // even, >= 2; entropy needs >= its levels
  std::size_t max_batches = 0;             // use at most this many batches; 0: all
  CalibrationProgress progress;            // optional
};

struct CalibrationResult {
  CalibrationTable table;
  std::map<std::string, Histogram> histograms;  // by tensor name, as collected
  std::size_t batches = 0;                      // batches run
};

// Runs min(batches.size(), max_batches) batches of `batches` through `graph`
// on the reference runtime and returns the table: amax of every calibrated
// value by `calibrator`, its signature, and the fingerprint of
// (options.model_hash, batches.shapes(), options.num_bins). Errors: no batch,
// an empty model_hash, a batch that does not fit the model (the runtime's
// error), or a non-finite activation (naming the tensor and batch).
CalibrationResult calibrate(const ir::Graph& graph, BatchSource& batches,
                            const Calibrator& calibrator, const CalibrateOptions& options);

}  // namespace anvil::quant
