#!/usr/bin/env bash
# The random-init calibration of docs/protocol.md ("Calibration"): full CIFAR-10 probe protocol (50,000 /
# 10,000 images, 36 epochs) on random `monogan` trunks, one run per combination of the choices the paper
# leaves open. Each run resumes or is skipped when rerun; results land in runs/calibration/<variant>/.
#   bash scripts/calibrate_random_row.sh [CIFAR10_DIR] [OUT_ROOT]
set -euo pipefail
cifar=${1:-../shared/datasets/cifar10}
root=${2:-runs/calibration}
probe=${MONO_PROBE:-.venv/bin/mono-probe}

run() {  # run NAME ARCH_ARGS FLIP
  local name=$1 args=$2 flip=$3
  [ -f "$root/$name/results.json" ] && { echo "done: $name"; return; }
  echo "run: $name ($args, $flip)"
  "$probe" linear --arch monogan --random-init --arch-args "$args" "$flip" \
    --train "$cifar/train" --val "$cifar/test" --epochs 36 --seed 0 --workers 2 --threads 1 --no-progress \
    --label "$name" --out "$root/$name" 2>>"$root/log.txt" | tee -a "$root/summary.txt"
}

mkdir -p "$root"
# the 2^4 factorial over activation, widths, init and flips (padding 'same' as tflib), single factors first
for combo in \
  "leaky_relu 64 wgan_gp no" "relu 64 wgan_gp no" "leaky_relu 96 wgan_gp no" "leaky_relu 64 torch no" \
  "leaky_relu 64 wgan_gp yes" "relu 64 torch no" "relu 96 torch no" "relu 96 torch yes" "relu 64 torch yes" \
  "relu 96 wgan_gp no" "relu 64 wgan_gp yes" "relu 96 wgan_gp yes" "leaky_relu 96 torch no" \
  "leaky_relu 96 wgan_gp yes" "leaky_relu 64 torch yes" "leaky_relu 96 torch yes"; do
  read -r act width init flip <<<"$combo"
  widths=$([ "$width" = 96 ] && echo 96,256,384,384 || echo 64,128,256,512)
  flag=$([ "$flip" = yes ] && echo --flip || echo --no-flip)
  run "$act-w$width-$init-flip$flip" "activation=$act widths=$widths padding=3,2,1,1 init=$init" "$flag"
done
# padding: 'valid' first layer (TensorFlow's VALID for conv1, 'same' after), on the base trunk
run "leaky_relu-w64-wgan_gp-flipno-pad0211" "activation=leaky_relu widths=64,128,256,512 padding=0,2,1,1 init=wgan_gp" --no-flip
