#!/usr/bin/env bash
# The TensorRT optimization guide's table (3 batches of 128 images, ResNet-18)
# reproduced with Anvil: `anvil bench --ablation` on torchvision ResNet-18,
# then the PyTorch peer doing the same job in the same run on the same card.
# BUILD_DIR names the build; the JSON, trace and chart go to ${OUT:-/tmp}.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
out=${OUT:-/tmp}
work=$(mktemp -d)
model=$work/resnet18.onnx
python3 bench/export_torchvision.py --model resnet18 -o "$model" || exit 1
echo "== anvil bench --ablation"
# Workers poll 2 ms for the next request before sleeping (PipelineOptions::
# idle_poll_us): the first upload then starts 0.02 ms after the first submit
# instead of 0.08 (twelfth session, docs/PERFORMANCE.md).
"$build/anvil" bench --ablation "$model" --idle-poll-us 2000 --timing-cache "$work/cache.json" \
  --json "$out/ablation.json" --trace "$out/ablation-trace.json" \
  --chart "$out/ablation.png" || exit 1
echo "== PyTorch peer"
python3 bench/ablation_pytorch_peer.py --model resnet18
