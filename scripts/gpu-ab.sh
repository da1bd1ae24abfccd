#!/usr/bin/env bash
# Same-run A/B comparisons on the GPU machine, step 2 (there): builds the
# working tree (build-gpu) and scripts/ab-prepare.sh's commit (build-ab/build),
# each with its own libanvil.so, then runs the given command with OLD and
# NEW set to the two `anvil` binaries, e.g.
#   bash scripts/gpu-ab.sh bash -c '$OLD run m.plan; $NEW run m.plan'
# Each binary loads the library of its own build folder (its runpath): an
# `anvil` copied away from a build folder that is then rebuilt runs the new
# library (the twelfth session lost two calls to that).
set -uo pipefail
cd "$(dirname "$0")/.."
cmd=("$@")
[ -d build-ab/src ] || { echo "no build-ab/src: run scripts/ab-prepare.sh REV here first"; exit 1; }
arch=${CUDA_ARCH:-90a}
for pair in "build-ab/src build-ab/build" ". build-gpu"; do
  set -- $pair
  rm -rf "$2"
  mkdir -p "$2"
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    >"$2/ab-configure.log" 2>&1 || { tail -20 "$2/ab-configure.log"; exit 1; }
  ninja -C "$2" -j"$(nproc)" anvil_cli >"$2/ab-build.log" 2>&1 || { tail -40 "$2/ab-build.log"; exit 1; }
done
export OLD=$PWD/build-ab/build/anvil NEW=$PWD/build-gpu/anvil
echo "OLD=$OLD ($(cat build-ab/REV)), NEW=$NEW (the working tree); built at $SECONDS s"
if [ ${#cmd[@]} -gt 0 ]; then "${cmd[@]}"; fi
