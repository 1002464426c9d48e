#!/usr/bin/env bash
# Configures and builds nnjit (Release, warnings as errors) into build/.
# BUILD_DIR and extra CMake arguments may be given: scripts/build.sh -DNNJIT_SANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} -DNNJIT_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
