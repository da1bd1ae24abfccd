#!/usr/bin/env bash
# INT8 and FP8 engines against FP16, input already on the GPU: ResNet-18 at
# batch 128 and ResNet-50 at 128 and 256 (issue 6's targets), each built with
# `anvil build --fp16 --int8` (and `--fp8`) from a calibration cache made by
# `anvil calibrate` on random N(0, 1) batches (the speed does not depend on
# the scales; accuracy on real data is bench/eval_digits.sh). Prints each
# build's summary (which convs kept FP16 because INT8 was slower there), the
# GPU compute time of FP16 and INT8 plans in one run on one card, and the
# INT8 and FP8 per-layer profiles, and PyTorch eager and torch.compile(max-autotune)
# on the same batches (torch.compile for ResNet-18 only; PEERS_COMPILE=all
# for every model, none for none). Run by
# scripts/gpu-check.sh (BUILD_DIR names the build); MODELS="resnet18" runs
# fewer models, QUANTIZED="int8" leaves FP8 out.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
work=$(mktemp -d)
python3 - "$work/calib" <<'PY' || exit 1
import os, sys
import numpy as np
os.makedirs(sys.argv[1])
rng = np.random.default_rng(0)
for i in range(2):
    np.save(f"{sys.argv[1]}/batch{i}.npy", rng.standard_normal((8, 3, 224, 224), dtype=np.float32))
PY
status=0
for model in ${MODELS:-resnet18 resnet50}; do
  onnx=$work/$model.onnx
  python3 bench/export_torchvision.py --model "$model" -o "$onnx" >/dev/null || { status=1; continue; }
  batches="128"
  [ "$model" = resnet50 ] && batches="128 256"
  max=${batches##* }
  shapes="--min-shapes input:1x3x224x224 --opt-shapes input:128x3x224x224 --max-shapes input:${max}x3x224x224"
  echo "== $model: anvil calibrate (minmax, 16 random images, CPU reference)"
  "$build/anvil" calibrate "$onnx" --data "$work/calib" --calibrator minmax -o "$work/$model.calib" |
    tail -1 || { status=1; continue; }
  echo "== $model: anvil build --fp16"
  # Into a file, then its first lines: `| head` would end the build with SIGPIPE.
  "$build/anvil" build "$onnx" -o "$work/$model-fp16.plan" --fp16 $shapes \
    --timing-cache "$work/cache.json" >"$work/$model-fp16.log" || { status=1; continue; }
  grep -E "^Built|layers:" "$work/$model-fp16.log"
  for q in ${QUANTIZED:-int8 fp8}; do
    echo "== $model: anvil build --fp16 --$q"
    "$build/anvil" build "$onnx" -o "$work/$model-$q.plan" --fp16 --$q \
      --calibration-cache "$work/$model.calib" $shapes --timing-cache "$work/cache.json" |
      grep -vE "^ +[0-9]+ +[0-9.]+ " | sed -n '1,/^layer /p' || status=1
  done
  for batch in $batches; do
    for precision in fp16 ${QUANTIZED:-int8 fp8}; do
      echo "== $model $precision batch $batch (GPU compute, no transfers)"
      "$build/anvil" run "$work/$model-$precision.plan" --batch "$batch" --no-data-transfers \
        --duration 3 | grep -E "Throughput|GPU Compute|\[W\]"
    done
  done
  # At the tuned batch the INT8 convs restore the plans compiled into the
  # plan file; at another they compile (docs/INT8.md, start-up).
  echo "== $model: load + first runs at the tuned batch (128) and at one not tuned (37): wall seconds, then anvil's phases"
  for precision in fp16 ${QUANTIZED:-int8 fp8}; do
    for startup_batch in 128 37; do
      start=$(date +%s.%N)
      phases=$("$build/anvil" run "$work/$model-$precision.plan" --batch $startup_batch \
        --no-data-transfers --warmup 0 --duration 0.01 | grep "^Start-up") || status=1
      echo "$precision batch $startup_batch: $(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')") s; $phases"
    done
  done
  echo "== $model: PyTorch peers in this run (FP16 channels-last)"
  # torch.compile max-autotune takes minutes per batch size on ResNet-50:
  # by default it runs for ResNet-18 only (PEERS_COMPILE=all: every model).
  compile=--no-compile
  if [ "${PEERS_COMPILE:-}" = all ] || { [ "$model" = resnet18 ] && [ "${PEERS_COMPILE:-}" != none ]; }; then
    compile=
  fi
  python3 bench/pytorch_peers.py --model "$model" --batches $batches $compile || status=1
  for q in ${QUANTIZED:-int8 fp8}; do
    echo "== $model $q batch 128 per-layer profile"
    "$build/anvil" run "$work/$model-$q.plan" --batch 128 --no-data-transfers --duration 1 \
      --dump-profile | sed -n '/=== Profile/,$p' | head -80
  done
done
rm -rf "$work"
exit $status
