#!/usr/bin/env bash
# MonoGAN's learning curve on a CPU (docs/results.md, "MonoGAN learning curve"): train on the Image B
# dataset (50,000 samples: an epoch is 781 critic steps of 64 images = 156 generator steps), keep every
# epoch's checkpoint, and probe the chosen ones with the full CIFAR-10 protocol. Rerunning resumes training
# and skips finished probes.
#   bash scripts/gan_learning_curve.sh NAME 'TRAIN OPTIONS' 'EPOCHS TO PROBE'
# e.g.
#   bash scripts/gan_learning_curve.sh lr3e-4 '--lr 3e-4' '1 2 4 6 8 13'
set -euo pipefail
name=$1 options=$2 probe_epochs=$3
cifar=${CIFAR10:-../shared/datasets/cifar10}
data=${DATA:-runs/gan/data-B}
root=${ROOT:-runs/gan}
bin=${BIN:-.venv/bin}
last=$(tr ' ' '\n' <<<"$probe_epochs" | sort -n | tail -1)
run="$root/$name"
[ -f "$data/manifest.json" ] || "$bin/mono-gen" --image B --image-dir ../shared/images --preset cifar --quiet --out "$data"
resume=$([ -f "$run/checkpoint.pt" ] && echo --resume || true)
# shellcheck disable=SC2086
/usr/bin/time -v -o "$run.time.txt" "$bin/mono-train" monogan --data "$data" --out "$run" --epochs "$last" \
  --save-every 1 --workers 1 --quiet $resume $options 2>>"$run.log"
for e in $probe_epochs; do
  ckpt=$(printf '%s/checkpoint-epoch%04d.pt' "$run" "$e")
  out="$run/probe-epoch$e"
  [ -f "$out/results.json" ] && continue
  "$bin/mono-probe" linear --ckpt "$ckpt" --train "$cifar/train" --val "$cifar/test" --epochs 36 --seed 0 \
    --workers 1 --threads 1 --quiet --label "$name, epoch $e" --out "$out" | tee -a "$root/summary.txt"
done
