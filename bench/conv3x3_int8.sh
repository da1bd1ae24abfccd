#!/usr/bin/env bash
# Our INT8 3x3 convolution against cuDNN's INT8 engine configs on ResNet-18's
# layer1 convs (with and without the residual) at batches 128 and 32, and
# their floors (bench/conv3x3_int8.cc). Run by scripts/gpu-check.sh
# (BUILD_DIR names the build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
"$build/anvil_bench_conv3x3_int8"
