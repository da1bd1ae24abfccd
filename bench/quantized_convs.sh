#!/usr/bin/env bash
# cuDNN's INT8 and FP8 E4M3 convolutions on ResNet-18's conv shapes after the
# stem at batch 128, each the fastest of 8 engine configs, against their
# floors (bench/quantized_convs.cc). Run by scripts/gpu-check.sh (BUILD_DIR
# names the build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
"$build/anvil_bench_quantized_convs"
