#!/usr/bin/env bash
# Configures and builds Anvil with Ninja in BUILD_DIR (default: build).
# Extra arguments go to cmake, e.g. scripts/build.sh -DANVIL_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@" >/dev/null
ninja -C "$build_dir" -j"$(nproc)" ${TARGETS:-}
