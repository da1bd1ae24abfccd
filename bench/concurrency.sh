#!/usr/bin/env bash
# Issue 4's numbers, ResNet-18 FP16 with the input already on the GPU:
# throughput of 1, 2 and 4 execution contexts on one engine (with and without
# CUDA graphs), the cost of shape changes and profile switches, and PyTorch at
# batch 1 with CUDA graphs (eager, eager + torch.cuda.CUDAGraph,
# torch.compile max-autotune), all in one run on one card. Run by
# scripts/gpu-check.sh (BUILD_DIR names the build); numbers go to
# docs/PERFORMANCE.md with the card and the date. DURATION sets the seconds
# per throughput cell (18 cells).
set -uo pipefail
TIMEFORMAT="build wall %R s"
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
work=$(mktemp -d)
model=$work/resnet18.onnx
python3 bench/export_torchvision.py --model resnet18 -o "$model" || exit 1
# Two profiles: small batches tuned at 32, large ones at 128; 33..63 in none.
profiles="--profile 1:32:32 --profile 64:128:128"
# The build's own log (its progress bar included) stays out of the report.
build_plan() {
  time "$build/anvil" build "$model" -o "$1" --fp16 $profiles \
    --timing-cache "$work/cache.json" >"$work/build.log" 2>&1
}
echo "== anvil build, two profiles, cold timing cache"
if ! build_plan "$work/r18.plan"; then
  tail -20 "$work/build.log"
  exit 1
fi
grep -E "^Built|profile 1:|^weights" "$work/build.log"
echo "== anvil build, two profiles, warm timing cache (what another engine's build costs)"
build_plan "$work/r18-rebuilt.plan" && grep -E "^Built" "$work/build.log"
echo "== anvil_bench_contexts"
"$build/anvil_bench_contexts" "$work/r18.plan" --duration "${DURATION:-1}"
status=$?
echo "== PyTorch batch 1, CUDA graphs"
# torch.compile at batch 1 is in bench/resnet18.sh (its compile takes a minute).
python3 bench/pytorch_graph_peers.py --model resnet18 --batch 1 --no-compile || status=1
rm -rf "$work"
exit $status
