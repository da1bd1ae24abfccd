#!/usr/bin/env bash
# ResNet's stem kernel in each of its variants (FP16 NHWC or FP32 NCHW input;
# FP16, INT8 checked or INT8 by reciprocal output) at batches 128, 32 and 8,
# by both kernels where the row kernel applies, against its floors, then the
# row kernel's band heights. Run by scripts/gpu-check.sh (BUILD_DIR names the
# build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
"$build/anvil_bench_stem"
