#!/usr/bin/env bash
# The README's test command, also what CI runs (.ci/run): set up, build, run
# every test that needs no GPU, then rebuild with clang + ASan/UBSan and run
# the unit tests (bad-input cases included) and a short importer fuzz run.
# TARGETS limits the sanitizer build to what it runs; GPU code is checked by
# compute-sanitizer on the GPU machine (scripts/gpu-check.sh), not here.
# GPU tests (ctest label `gpu`) skip with a message on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== build (Release) and all tests"
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
echo "== ONNX node conformance (op, run, passed, skipped, failed)"
build/tests/conformance_node_suite | sed -n '/^op /,/^(/p'

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer, unit and fuzz tests"
BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo TARGETS="anvil_unit_tests fuzz_importer fuzz_plan fuzz_calibration_cache" scripts/build.sh \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DANVIL_SANITIZE=ON -DANVIL_FUZZ=ON \
  -DANVIL_CUDA=OFF
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -L "unit|fuzz"
