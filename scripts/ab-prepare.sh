#!/usr/bin/env bash
# Same-run A/B comparisons on the GPU machine, step 1 (here): puts the
# sources of commit REV (default HEAD~1) into build-ab/src, an ignored folder
# to carry with the device call (`carry: ["build-ab"]`, 3 MB). Step 2 runs
# there: scripts/gpu-ab.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
rm -rf build-ab
mkdir -p build-ab/src
git archive "$rev" | tar -x -C build-ab/src
git rev-parse --short "$rev" >build-ab/REV
echo "build-ab/src: $(cat build-ab/REV) ($(du -sh build-ab | cut -f1)); carry build-ab with the call"
