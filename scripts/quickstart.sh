#!/usr/bin/env bash
# The first README command: install, build, export the zoo, run and benchmark MobileNetV2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
SETS=zoo scripts/export-zoo.sh  # the coverage set is for the tests
echo
echo "== nnjit run models/mobilenet_v2.onnx (compared with torch's output)"
build/bin/nnjit run models/mobilenet_v2.onnx --input models/mobilenet_v2.input.npy \
  --output-dir build/out --expect models/mobilenet_v2.output.npy
echo
echo "== nnjit bench models/mobilenet_v2.onnx"
build/bin/nnjit bench models/mobilenet_v2.onnx --iterations 20 --warmup 3 --json
