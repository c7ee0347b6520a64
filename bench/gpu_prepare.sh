#!/usr/bin/env bash
# Before a GPU session (issue 13), here: put what bench/gpu_run.sh needs into the two folders that travel with
# the working tree (.gitignore keeps both out of git): .gpu/ (CIFAR-10 packed into one file, Image B) and .whl/ (the
# pure-Python packages the device's image lacks). Then, with the device tool:
#   run(command="bash bench/gpu_run.sh 540", carry=[".gpu", ".whl"], timeout_s=570)
#   bash bench/gpu_prepare.sh [CIFAR10_DIR] [IMAGE_DIR]
set -euo pipefail
cifar=${1:-../shared/datasets/cifar10}
images=${2:-../shared/images}
python=${PYTHON:-python3}
"$python" bench/gpu_plan.py pack "$cifar" .gpu/cifar10.pack
mkdir -p .gpu/images
cp "$images/animals.png" .gpu/images/
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 -d .whl webdataset braceexpand
du -sh .gpu .whl
