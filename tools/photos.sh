#!/usr/bin/env bash
# Inference on real photos: install, build, then import EfficientNet-Lite0 with its
# ImageNet weights from PyTorch and classify photos that Debian packages ship, with
# graft's top-5 beside PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec /usr/bin/python3 tools/photos.py "$@"
