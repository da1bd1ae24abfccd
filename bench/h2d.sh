#!/usr/bin/env bash
# Host-to-device copies from pinned memory: single copies of 4 to 231 MB
# (the fixed cost of a copy), then config 12's 12 chunk uploads back to
# back, with the executor's events, with the GPU timeline's, and over two
# streams (bench/h2d.cc). Run by scripts/gpu-check.sh (BUILD_DIR names the
# build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
"$build/anvil_bench_h2d"
