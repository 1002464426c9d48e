#!/usr/bin/env bash
# Exports the model zoo (ONNX + torch's input/output as .npy) into models/, once.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 tools/export_zoo.py --out models "$@"
