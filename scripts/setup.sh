#!/usr/bin/env bash
# Installs everything Anvil needs to build and test, idempotently:
# Debian packages (compilers, protobuf, test and image libraries) and a
# project venv (.venv) with the Python test tooling (onnx, onnxruntime, numpy).
# Safe to run any number of times; a second run does no network work.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev clang-format
  protobuf-compiler libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  libonnx-testdata
  libjpeg-dev libturbojpeg0-dev libpng-dev
  python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  # Offline machines (the GPU machine has no network) keep what they have:
  # the build then names anything that is really missing.
  if ! { $sudo_cmd apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
           --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "setup: warning: could not install ${missing[*]} (offline?); continuing" >&2
  fi
fi

# The venv holds only test tooling; the C++ build never depends on it.
venv=.venv
requirements=python/requirements.txt
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: creating $venv with $(tr '\n' ' ' < "$requirements")"
  if python3 -m venv "$venv" &&
     "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"; then
    rm -f "$venv"/.installed-*
    touch "$stamp"
  else
    echo "setup: warning: could not install the Python test tooling into $venv (offline?)" >&2
  fi
fi
