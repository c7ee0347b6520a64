#!/usr/bin/env bash
# The random-init calibration of docs/protocol.md ("Calibration"): full CIFAR-10 probe protocol (50,000 /
# 10,000 images, 36 epochs) on random `monogan` trunks, one run per combination of the choices the paper
# leaves open. Each run resumes or is skipped when rerun; results land in runs/calibration/<variant>/.
#   bash scripts/calibrate_random_row.sh [CIFAR10_DIR] [OUT_ROOT]
set -euo pipefail
cifar=${1:-../shared/datasets/cifar10}
root=${2:-runs/calibration}
probe=${MONO_PROBE:-.venv/bin/mono-probe}

run() {  # run ACTIVATION WIDTH INIT FLIP [PADDING]: one variant
  local act=$1 width=$2 init=$3 flip=$4 pad=${5:-3,2,1,1}
  local widths name
  widths=$([ "$width" = 96 ] && echo 96,256,384,384 || echo 64,128,256,512)
  name="$act-w$width-$init-flip$flip$([ "$pad" = 3,2,1,1 ] || echo "-pad${pad//,/}")"
  [ -f "$root/$name/results.json" ] && { echo "done: $name"; return; }
  echo "run: $name"
  "$probe" linear --arch monogan --random-init \
    --arch-args "activation=$act widths=$widths padding=$pad init=$init" "$([ "$flip" = yes ] && echo --flip || echo --no-flip)" \
    --train "$cifar/train" --val "$cifar/test" --epochs 36 --seed 0 --workers 2 --threads 1 --quiet \
    --label "$name" --out "$root/$name" 2>>"$root/log.txt" | tee -a "$root/summary.txt"
}

mkdir -p "$root"
# one factor at a time from WGAN-GP's choices (LeakyReLU, 64-128-256-512, tflib init, 'same' padding, no flips)
run leaky_relu 64 wgan_gp no
run relu 64 wgan_gp no
run leaky_relu 96 wgan_gp no
run leaky_relu 64 torch no
run leaky_relu 64 wgan_gp yes
run leaky_relu 64 wgan_gp yes 3,2,1,0   # conv4 unpadded: a 1x1 map
# combinations, the most promising first (the single factors' effects added up)
run leaky_relu 64 torch yes 3,2,1,0
run leaky_relu 96 wgan_gp yes 3,2,1,0
run relu 96 torch yes
run relu 96 torch yes 3,2,1,0
run relu 64 torch yes 3,2,1,0
run leaky_relu 96 torch yes 3,2,1,0
run relu 64 torch no
run relu 96 torch no
run relu 64 torch yes
run relu 96 wgan_gp no
run relu 64 wgan_gp yes
run relu 96 wgan_gp yes
run leaky_relu 96 torch no
run leaky_relu 96 wgan_gp yes
run leaky_relu 64 torch yes
run leaky_relu 96 torch yes
run leaky_relu 64 wgan_gp no 0,2,1,1    # conv1 unpadded (TensorFlow's VALID), 'same' after
