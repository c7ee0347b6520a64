#!/usr/bin/env bash
# Screening MonoGAN recipes on a CPU budget (docs/results.md, "A MonoGAN recipe for a CPU"): each recipe trains
# on the Image B dataset for the same number of critic images (STEPS critic steps of batch 64, or twice as many
# of batch 32), then a reduced probe protocol (10,000 / 5,000 CIFAR-10 images, 12 epochs) ranks them against
# a random-init trunk probed the same way. Reruns skip what is done.
#   bash scripts/gan_screen.sh [STEPS]
set -euo pipefail
steps=${1:-600}
cifar=${CIFAR10:-../shared/datasets/cifar10}
data=${DATA:-runs/gan/data-B}
root=${ROOT:-runs/gan-screen}
bin=${BIN:-.venv/bin}
mkdir -p "$root"
[ -f "$data/manifest.json" ] || "$bin/mono-gen" --image B --image-dir ../shared/images --preset cifar --quiet --out "$data"
probe() {  # probe NAME TRUNK-ARGS...
  local name=$1; shift
  [ -f "$root/$name/probe/results.json" ] && return
  "$bin/mono-probe" linear "$@" --train "$cifar/train" --val "$cifar/test" --train-limit 10000 --val-limit 5000 \
    --epochs 12 --seed 0 --workers 1 --threads 1 --quiet --label "$name" --out "$root/$name/probe" \
    | tee -a "$root/summary.txt"
}
screen() {  # screen NAME BATCH OPTIONS...
  local name=$1 batch=$2; shift 2
  local n=$((steps * 64 / batch))
  if [ ! -f "$root/$name/train/checkpoint.pt" ]; then
    /usr/bin/time -f "%e s wall, %U s user" -o "$root/$name.time" "$bin/mono-train" monogan --data "$data" \
      --out "$root/$name/train" --epochs 1 --steps-per-epoch "$n" --batch-size "$batch" --workers 1 --quiet "$@"
  fi
  probe "$name" --ckpt "$root/$name/train/checkpoint.pt"
}
probe random --arch monogan --random-init
screen wgangp-paper 64 --beta1 0              # WGAN-GP's Algorithm 1: Adam(1e-4, 0, 0.9), 5 critic steps
screen wgangp-code 64 --beta1 0.5             # WGAN-GP's gan_cifar.py: Adam(1e-4, 0.5, 0.9)
screen lr3e-4 64 --beta1 0.5 --lr 3e-4
screen lr3e-4-ncritic2 64 --beta1 0.5 --lr 3e-4 --n-critic 2
screen lr3e-4-batch32 32 --beta1 0.5 --lr 3e-4
screen lr1e-3 64 --beta1 0.5 --lr 1e-3
