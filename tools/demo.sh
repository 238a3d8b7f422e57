#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then finetune EfficientNet-Lite0 on
# Fashion-MNIST three ways (from scratch, feature extraction, full finetuning) and
# evaluate the best export (tools/finetune_demo.py says more).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec /usr/bin/python3 tools/finetune_demo.py "$@"
