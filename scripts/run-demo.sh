#!/usr/bin/env bash
# The README's main job: set up, build, make the default ResNet-18 model
# (torchvision's architecture, seeded random weights, dynamic batch) and run
# it: on the GPU engine where there is a GPU (build an FP16 plan, then time
# it), otherwise on the CPU reference runtime, which says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=models/resnet18.onnx
if [ ! -f "$model" ]; then
  mkdir -p models
  # The project venv, or a python3 that already has onnx and numpy (the
  # offline GPU machine's).
  python=.venv/bin/python
  "$python" -c "import onnx, numpy" 2>/dev/null || python=python3
  "$python" python/make_models.py --model resnet18 --classes 1000 --seed 0 -o "$model"
fi
build/anvil inspect "$model" --batch 4
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  build/anvil build "$model" -o models/resnet18_fp16.plan --fp16 \
    --min-shapes input:1x3x224x224 --opt-shapes input:32x3x224x224 \
    --max-shapes input:128x3x224x224 --timing-cache models/timing.cache
  build/anvil run models/resnet18_fp16.plan --batch 32 --duration 3
else
  build/anvil run "$model" --batch 4 --top 5 --iterations 3
fi
