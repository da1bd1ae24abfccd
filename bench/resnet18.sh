#!/usr/bin/env bash
# ResNet-18 FP16 on the GPU, input already on the GPU: Anvil against PyTorch
# eager and torch.compile(max-autotune), all in one run on one card; plus
# Anvil's build time with a cold and a warm timing cache. Run by
# scripts/gpu-check.sh (BUILD_DIR names the build); numbers go to
# docs/PERFORMANCE.md with the card and the date.
set -uo pipefail
TIMEFORMAT="build wall %R s"
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
work=$(mktemp -d)
model=$work/resnet18.onnx
python3 bench/export_torchvision.py --model resnet18 -o "$model" || exit 1
shapes="--min-shapes input:1x3x224x224 --opt-shapes input:128x3x224x224 --max-shapes input:128x3x224x224"
echo "== anvil build, cold timing cache"
time "$build/anvil" build "$model" -o "$work/r18.plan" --fp16 $shapes \
  --timing-cache "$work/cache.json" || exit 1
echo "== anvil build, warm timing cache"
time "$build/anvil" build "$model" -o "$work/r18.plan" --fp16 $shapes \
  --timing-cache "$work/cache.json" | head -3
echo "== anvil run batch 128 (GPU compute, no transfers), then its per-layer profile"
"$build/anvil" run "$work/r18.plan" --batch 128 --no-data-transfers --duration 3 --dump-profile \
  --export-trace "${OUT:-$work}/resnet18-b128-trace.json" | grep -vE "^Latency|^H2D|^D2H|top-"
echo "== anvil run batch 1 (GPU compute, no transfers)"
"$build/anvil" run "$work/r18.plan" --batch 1 --no-data-transfers --duration 3 |
  grep -E "summary|Throughput|GPU Compute|Enqueue|\[W\]"
echo "== anvil run batch 1 with CUDA graphs"
"$build/anvil" run "$work/r18.plan" --batch 1 --no-data-transfers --duration 3 --cuda-graph |
  grep -E "GPU Compute|Enqueue|CUDA graph|\[W\]"
echo "== auxiliary streams (anvil build --aux-streams 1, warm timing cache): batch 128, batch 1 with graphs"
"$build/anvil" build "$model" -o "$work/r18-aux.plan" --fp16 $shapes --aux-streams 1 \
  --timing-cache "$work/cache.json" | grep -E "auxiliary|Built"
"$build/anvil" run "$work/r18-aux.plan" --batch 128 --no-data-transfers --duration 3 |
  grep -E "GPU Compute|\[W\]"
"$build/anvil" run "$work/r18-aux.plan" --batch 1 --no-data-transfers --duration 3 --cuda-graph |
  grep -E "GPU Compute|CUDA graph|\[W\]"
echo "== latency plan: one profile at batch 1 (1:1:1, tuned at 1), --aux-streams 1, CUDA graphs"
"$build/anvil" build "$model" -o "$work/r18-b1.plan" --fp16 --profile 1:1:1 --aux-streams 1 \
  --timing-cache "$work/cache.json" | grep -E "auxiliary|Built"
"$build/anvil" run "$work/r18-b1.plan" --batch 1 --no-data-transfers --duration 3 --cuda-graph |
  grep -E "GPU Compute|CUDA graph|\[W\]"
"$build/anvil" run "$work/r18-b1.plan" --batch 1 --no-data-transfers --duration 1 --dump-profile |
  sed -n '/=== Profile/,$p'
echo "== anvil run batch 1 per-layer profile (the batch-128 plan)"
"$build/anvil" run "$work/r18.plan" --batch 1 --no-data-transfers --duration 1 --dump-profile |
  sed -n '/=== Profile/,$p'
echo "== anvil run batch 128 with transfers"
"$build/anvil" run "$work/r18.plan" --batch 128 --duration 2 | grep -E "Throughput|Latency|H2D|D2H"
echo "== peers"
python3 bench/pytorch_peers.py --model resnet18 --batches 1 128
