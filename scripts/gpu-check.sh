#!/usr/bin/env bash
# Everything the GPU machine is for, in ONE call (device time is scarce):
# configure and build with Ninja on all cores, run the GPU tests (label `gpu`)
# and the CPU unit tests, compute-sanitizer memcheck over the GPU tests, then
# the quick benchmarks. Logs go to $OUT (the device tool's folder) or out/.
# The last lines printed are a short summary.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
build=build-gpu
summary=()

{ nvidia-smi; nvcc --version; cmake --version; } >"$out/env.log" 2>&1
# The tree arrives as a fresh copy whose files may be older than objects a
# previous call left on a warm machine: build from scratch (a minute on 16 cores).
rm -rf "$build"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90a} >"$out/configure.log" 2>&1; then
  tail -40 "$out/configure.log"
  exit 1
fi
if ! ninja -C "$build" -j"$(nproc)" >"$out/build.log" 2>&1; then
  grep -E "error|FAILED" -A6 "$out/build.log" | head -120
  exit 1
fi

summary+=("build: done at ${SECONDS} s")

# SKIP_TESTS=1 leaves the test runs out (a second call that only wants the
# sanitizer and the benchmarks after a first call ran the tests);
# GPU_TESTS=REGEX runs only the GPU tests whose names match (ctest -R),
# GPU_TESTS_EXCLUDE=REGEX leaves those that match out (ctest -E): the whole
# suite no longer fits one 10-minute call, so two calls split it.
# GPU_TEST_JOBS=N (default 1) runs the selected GPU tests N at a time on the
# one GPU, except those that time or count concurrency (serial_gpu_tests),
# which run one at a time after them: most of the suite's time is cuDNN
# compiling on the CPU. Not yet tried on the GPU machine (twelfth session).
serial_gpu_tests='CudnnKernelCache|PrepareLayers|PipelineGpu|GpuTimeline|ContextThreads|ContextAuxStreams|Ablation'
# The selected GPU tests' names, one a line (the model fixtures left out:
# ctest adds them where needed).
gpu_test_names() {
  ctest --test-dir "$build" -N -L gpu ${GPU_TESTS:+-R "$GPU_TESTS"} \
    ${GPU_TESTS_EXCLUDE:+-E "$GPU_TESTS_EXCLUDE"} | sed -n 's/^ *Test *#[0-9]*: //p' |
    grep -v '^gpu\.'
}
# Names, one a line -> a ctest -R regex matching exactly them.
names_regex() {
  sed 's/[][().*+?^$|\\{}]/\\&/g' | paste -sd'|' | sed 's/^/^(/; s/$/)$/'
}
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  if [ "${GPU_TEST_JOBS:-1}" -gt 1 ]; then
    names=$(gpu_test_names)
    parallel=$(grep -vE "$serial_gpu_tests" <<<"$names")
    serial=$(grep -E "$serial_gpu_tests" <<<"$names")
    : >"$out/gpu-tests.log"
    : >"$out/gpu-tests-full.log"
    fixtures=()
    if [ -n "$parallel" ]; then
      ctest --test-dir "$build" -L gpu -R "$(names_regex <<<"$parallel")" -j"$GPU_TEST_JOBS" \
        --output-on-failure >>"$out/gpu-tests.log" 2>&1
      cat "$build/Testing/Temporary/LastTest.log" >>"$out/gpu-tests-full.log" 2>/dev/null
      fixtures=(-FS anvil_gpu_models)  # made once, by the first run
    fi
    if [ -n "$serial" ]; then
      ctest --test-dir "$build" -L gpu -R "$(names_regex <<<"$serial")" "${fixtures[@]}" \
        --output-on-failure >>"$out/gpu-tests.log" 2>&1
      cat "$build/Testing/Temporary/LastTest.log" >>"$out/gpu-tests-full.log" 2>/dev/null
    fi
    results=$(grep -E 'tests passed|tests failed' "$out/gpu-tests.log" | paste -sd';')
    summary+=("gpu tests ($GPU_TEST_JOBS at a time, then one at a time): $results (at ${SECONDS} s)")
  else
    ctest --test-dir "$build" -L gpu ${GPU_TESTS:+-R "$GPU_TESTS"} \
      ${GPU_TESTS_EXCLUDE:+-E "$GPU_TESTS_EXCLUDE"} --output-on-failure \
      >"$out/gpu-tests.log" 2>&1
    # Every test's output, passing ones too (the accuracy tables are in there).
    cp "$build/Testing/Temporary/LastTest.log" "$out/gpu-tests-full.log" 2>/dev/null
    summary+=("gpu tests: $(grep -E 'tests passed|tests failed' "$out/gpu-tests.log" | tail -1) (at ${SECONDS} s)")
  fi
  ctest --test-dir "$build" -L unit -j"$(nproc)" >"$out/unit-tests.log" 2>&1
  summary+=("unit tests: $(grep -E 'tests passed|tests failed' "$out/unit-tests.log" | tail -1)")
fi

if [ "${SKIP_MEMCHECK:-0}" != 1 ] && command -v compute-sanitizer >/dev/null; then
  # API errors are the tests' own deliberate bad calls (each call is checked
  # and raises anvil::Error); memcheck is here for out-of-bounds accesses.
  # The kernels, the library wrappers' error paths and one full ResNet-18
  # build + run, also on auxiliary streams; other models add time, not coverage.
  # MEMCHECK_FILTER=GTEST_FILTER narrows it (a call that changed one kernel).
  default_filter='Device*:Kernels*:Conv3x3Int8.*:ConvUnfused.Epilogue*:LayerInt8Runners.*:*EngineModel*resnet18_fp16*:*ContextAuxStreams*fp16*'
  timeout 300 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 1 \
    "$build/tests/anvil_gpu_tests" --gtest_filter="${MEMCHECK_FILTER:-$default_filter}" \
    >"$out/memcheck.log" 2>&1
  summary+=("memcheck: exit $?, $(grep -m1 'ERROR SUMMARY' "$out/memcheck.log") (at ${SECONDS} s)")
fi

# Benchmarks: each bench/*.sh prints its own table (SKIP_BENCH=1 leaves them
# out when a call must stay short, as SKIP_MEMCHECK=1 does memcheck).
for bench in bench/*.sh; do
  [ "${SKIP_BENCH:-0}" = 1 ] && break
  [ -e "$bench" ] || continue
  name=$(basename "$bench" .sh)
  # BENCHES="a b" runs only bench/a.sh and bench/b.sh.
  [ -n "${BENCHES:-}" ] && [[ " $BENCHES " != *" $name "* ]] && continue
  BUILD_DIR=$build bash "$bench" >"$out/bench-$name.log" 2>&1
  summary+=("bench $name: exit $? (see bench-$name.log, at ${SECONDS} s)")
done

grep -E "FAILED|Failure|error" "$out/gpu-tests.log" 2>/dev/null | head -40
echo "== summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
printf '%s\n' "${summary[@]}"
