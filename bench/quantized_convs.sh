#!/usr/bin/env bash
# cuDNN's INT8 and FP8 E4M3 convolutions on the conv shapes after the stem
# of ResNet-18 (and ResNet-50: MODELS="resnet18 resnet50") at batch 128,
# each the fastest of 8 engine configs, against their floors
# (bench/quantized_convs.cc). Run by scripts/gpu-check.sh (BUILD_DIR names
# the build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
status=0
for model in ${MODELS:-resnet18}; do
  echo "== $model"
  "$build/anvil_bench_quantized_convs" --model "$model" || status=1
done
exit $status
