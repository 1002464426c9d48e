#!/usr/bin/env bash
# Installs the Debian 12 packages nnjit needs. Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config binutils
  libxbyak-dev libdnnl-dev libcpuinfo-dev libspdlog-dev doctest-dev libbenchmark-dev
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  python3-torch python3-torchvision python3-onnx python3-numpy python3-matplotlib
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
