#!/usr/bin/env bash
# One short GPU session, in order of value (issue 13; docs/benchmarks.md, "On a GPU"): the device, MonoGAN's
# measured throughput, then the paper's CIFAR experiment (Image B, MonoGAN with as many generator steps as
# fit, random and MonoGAN probes with the full protocol) planned to end before SECONDS. It stops cleanly
# before its limit and keeps what finished; its results are the few files in OUT (at most 8 come back).
#
#   bash bench/gpu_run.sh [SECONDS]                   # default 540; OUT=${OUT:-runs/gpu-run}
#   GPU_RUN_DRY=1 CIFAR10=DIR IMAGE=FILE bash bench/gpu_run.sh 300   # rehearsal on a CPU at smoke sizes
#
# Before a session, here: python bench/gpu_plan.py pack ../shared/datasets/cifar10 .gpu/cifar10.pack, copy
# ../shared/images/animals.png to .gpu/images/, and the wheels the device lacks to .whl/ (docs/benchmarks.md).
set -uo pipefail
limit=${1:-540}
out=${OUT:-runs/gpu-run}
dry=${GPU_RUN_DRY:-0}
work=${GPU_RUN_WORK:-$(mktemp -d)}
start=$SECONDS
left() { echo $((limit - (SECONDS - start))); }
within() { local t=$(($(left) - $1)); echo $((t > 1 ? t : 1)); }  # seconds left, less a margin, at least 1
say() { echo "gpu_run [$((SECONDS - start)) s]: $*" | tee -a "$out/log.txt" >&2; }
mkdir -p "$out"
: >"$out/log.txt"

python=${PYTHON:-python3}
if ! "$python" -c "import mono.repro, webdataset" 2>/dev/null; then
  if [ -d .whl ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$work/site" .whl/*.whl || exit 1
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  "$python" -m pip install -q --no-deps --no-build-isolation --no-compile --target "$work/site" . || exit 1
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi

if [ "$dry" = 1 ]; then
  device=cpu budget=smoke steps=20 workers=1 reserve=${GPU_RUN_RESERVE:-30}
else
  device=cuda budget=gpu steps=500 workers=12 reserve=${GPU_RUN_RESERVE:-150}
fi

# 1. The device and the software, first: worth having even if nothing else runs.
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$python" -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor(), 'cpus', __import__('os').cpu_count())"
  git log -1 --format='commit %h %s' 2>/dev/null
} >"$out/env.txt" 2>&1
say "$(tr '\n' ' ' <"$out/env.txt")"

# 2. Inputs: CIFAR-10 (a folder, or the pack that travelled) and Image B.
cifar=${CIFAR10:-}
if [ -z "$cifar" ] && [ -f .gpu/cifar10.pack ]; then
  cifar=$work/cifar10
  "$python" bench/gpu_plan.py unpack .gpu/cifar10.pack "$cifar" >/dev/null || { say "unpacking CIFAR-10 failed"; exit 1; }
fi
[ -d "$cifar/train" ] || { say "no CIFAR-10: set CIFAR10=DIR or make .gpu/cifar10.pack"; exit 1; }
images=${IMAGE_DIR:-.gpu/images}
image=(--image "${IMAGE:-B}")  # Image B (the paper's CIFAR source), or IMAGE=FILE
[ -d "$images" ] && image+=(--image-dir "$images")

# 3. MonoGAN's throughput on this device, on a dataset made for it.
timeout "$(within 60)" "$python" -m mono.generator.cli "${image[@]}" --preset cifar --samples 20000 --quiet \
  --out "$work/throughput-data" 2>>"$out/log.txt" || { say "generation for the throughput run failed"; exit 1; }
if ! timeout "$(within 60)" "$python" bench/gpu_plan.py measure --data "$work/throughput-data" --steps "$steps" \
  --device "$device" --workers "$workers" --out "$out/throughput.json" >/dev/null 2>>"$out/log.txt"; then
  say "throughput measurement failed (log.txt)"
  exit 1
fi
say "throughput: $(cat "$out/throughput.json" | tr -d '\n ')"

# 4. The experiment, sized to the time left, stopped (with what finished kept) before the limit.
"$python" bench/gpu_plan.py plan --throughput "$out/throughput.json" --seconds "$(within 20)" \
  --reserve "$reserve" >"$out/plan.json" || exit 1
epochs=$("$python" -c "import json, sys; print(json.load(open(sys.argv[1]))['gan_epochs'])" "$out/plan.json")
say "plan: $(cat "$out/plan.json")"
if [ "$(left)" -lt $((reserve + 20)) ]; then
  say "stopping: $(left) s left, the experiment needs more than $reserve s; the figures above are kept"
  exit 0
fi
repro=$work/repro
timeout --signal INT "$(within 15)" "$python" -m mono.repro.cli cifar --cifar10 "$cifar" --out "$repro" \
  --budget "$budget" --gan-epochs "$epochs" "${image[@]}" --workers "$workers" --device "$device" --quiet \
  2>>"$out/log.txt"
say "mono-repro exited with $?"

# 5. What came back: the report, the numbers, the GAN's curve (at most 8 files in all).
for f in report.md results.json commands.sh; do
  [ -f "$repro/$f" ] && cp "$repro/$f" "$out/repro-$f"
done
[ -f "$repro/train/monogan-all/metrics.csv" ] && cp "$repro/train/monogan-all/metrics.csv" "$out/monogan-metrics.csv"
say "done; results in $out"
