#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then import a model from
# PyTorch and classify real photos with graft, next to PyTorch's own answer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec /usr/bin/python3 tools/demo.py "$@"
