#!/usr/bin/env bash
# The second README command (and what CI runs): build, make sure the zoo exists, run every
# test suite with ctest. SANITIZE=1 builds into build-asan/ with AddressSanitizer and
# UndefinedBehaviorSanitizer instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo
  scripts/build.sh -DNNJIT_SANITIZE=address,undefined -DNNJIT_BUILD_BENCH=OFF
else
  scripts/build.sh
fi
scripts/export-zoo.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 1500 "$@"
