#!/usr/bin/env bash
# Exports the model zoo (ONNX + torch's input/output as .npy) into models/ and the
# coverage set into models/coverage/; present models are kept. SETS picks the sets
# (default "zoo coverage"); arguments go to tools/export_zoo.py for each set.
set -euo pipefail
cd "$(dirname "$0")/.."
for set in ${SETS:-zoo coverage}; do
  out=models
  [ "$set" = zoo ] || out=models/$set
  /usr/bin/python3 tools/export_zoo.py --set "$set" --out "$out" "$@"
done
