#!/usr/bin/env bash
# The README's main job: set up, build, make the default ResNet-18 model
# (torchvision's architecture, seeded random weights, dynamic batch) and run it.
# Until the GPU engine lands this runs on the CPU reference runtime, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=models/resnet18.onnx
if [ ! -f "$model" ]; then
  mkdir -p models
  .venv/bin/python python/make_models.py --model resnet18 --classes 1000 --seed 0 -o "$model"
fi
build/anvil inspect "$model" --batch 4
build/anvil run "$model" --batch 4 --top 5 --iterations 3
