#!/usr/bin/env bash
# Accuracy on real data: trains ResNet-18 on scikit-learn's digits with
# PyTorch (python/train_digits.py), exports it to ONNX, then scores the test
# split with `anvil eval` at every precision and prints PyTorch's FP32 top-1
# beside Anvil's. Run by scripts/gpu-check.sh (BUILD_DIR names the build).
#
# The dataset is made where scikit-learn is (the GPU machine may lack it) and
# carried over: `.venv/bin/python python/make_digits.py` writes build/digits;
# DIGITS_DIR (or the first argument) points elsewhere. MODELS="resnet18
# mobilenet_v2 resnet50" scores more models; PRECISION=fp16 (fp32, int8, fp8,
# all) scores one precision. `all` builds one INT8 and one FP8 plan per
# calibrator: about 2 and 2.5 minutes each for ResNet-18 on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
digits=${1:-${DIGITS_DIR:-build/digits}}
if [ ! -f "$digits/test_images.npy" ] || [ ! -f "$digits/train_images.npy" ]; then
  echo "skipped: no dataset at $digits (make it with .venv/bin/python python/make_digits.py" \
       "-o $digits and carry it to this machine)"
  exit 0
fi
work=$(mktemp -d)
status=0
for model in ${MODELS:-resnet18}; do
  echo "== $model: train with PyTorch"
  if ! python3 python/train_digits.py --dataset "$digits" --model "$model" \
       -o "$work/$model.onnx" --json "$work/$model-pytorch.json"; then
    status=1
    continue
  fi
  echo "== $model: anvil eval (plans built here, FP32 with TF32 off and FP16)"
  if ! "$build/anvil" eval "$work/$model.onnx" --dataset "$digits" --split test \
       --precision "${PRECISION:-all}" --device gpu --batch 64 --timing-cache "$work/cache.json" \
       --json "$work/$model-anvil.json"; then
    status=1
    continue
  fi
  python3 - "$work/$model-pytorch.json" "$work/$model-anvil.json" <<'EOF'
import json, sys
torch_result = json.load(open(sys.argv[1]))
anvil_result = json.load(open(sys.argv[2]))
base = torch_result["pytorch_fp32_top1_percent"]
print(f"\n{torch_result['model']}: test top-1, PyTorch beside Anvil")
print("| engine | precision | top-1 % | correct/total | vs PyTorch FP32 (points) |")
print("|---|---|---:|---:|---:|")
print(f"| PyTorch | FP32 | {base:.2f} | {torch_result['correct']}/{torch_result['total']} | +0.00 |")
for row in anvil_result["results"]:
    print(f"| Anvil ({row['device'].upper()}) | {row['precision'].upper()} | "
          f"{row['top1_percent']:.2f} | {row['correct']}/{row['total']} | "
          f"{row['top1_percent'] - base:+.2f} |")
for note in anvil_result["notes"]:
    print(note)
EOF
done
rm -rf "$work"
exit $status
