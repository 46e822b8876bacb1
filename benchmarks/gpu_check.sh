#!/usr/bin/env bash
# The GPU check: what vid2vid does on a lent H100/H200, in one call (about 7 minutes).
#
#   benchmarks/gpu_check.sh --prepare            here, on a CPU machine with the registry:
#                                                a dataset and the missing wheels into .gpu_check/
#   benchmarks/gpu_check.sh OUT                  on the GPU machine (.gpu_check carried along)
#   benchmarks/gpu_check.sh --cpu OUT [--data D] the same steps, tiny, on the CPU (CI runs it)
#
# Steps: the CUDA-marked tests; `vid2vid bench` of `base` at 256 px (eager, bf16,
# channels_last, torch.compile; share of the bf16 peak); 3 minutes of `base` training at
# 256 px on dancer.avi (steps/s, frames/s, peak memory, MFU); transfer at 512 px in bf16,
# eager and compiled (frames/s). Writes OUT/gpu_check.json (every number) and
# OUT/gpu_check.log (every command's output); prints a short table last. A failed step
# is recorded and the next one runs; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=gpu
DATA=.gpu_check/dancer
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare ;;
    --cpu) MODE=cpu ;;
    --data) DATA="${2:?--data needs a dataset folder}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) OUT="$1" ;;
  esac
  shift
done
PY=${PYTHON:-python3}

if [ "$MODE" = prepare ]; then
  # A 300-frame, 256 px cut of dancer.avi with flow (mediapipe runs here, not there), and
  # wheels of what `pip install --no-deps -e .` leaves out on the GPU machine's image.
  set -e
  video=${VID2VID_TEST_VIDEO:-../shared/data/dancer.avi}
  rm -rf .gpu_check/whl && mkdir -p .gpu_check/whl
  exclude=$(git rev-parse --git-path info/exclude)   # a worktree's .git is a file
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.gpu_check/' "$exclude" 2>/dev/null || echo /.gpu_check/ >> "$exclude"
  [ -f .gpu_check/dancer/meta.json ] ||
    vid2vid preprocess "$video" --out .gpu_check/dancer --max-size 256 --end 300
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu_check/whl \
    isal==1.9.1 imageio-ffmpeg==0.6.0
  # imageio-ffmpeg 0.6.0, not the newest: 0.8's wheel alone is 68 MB, over what a call carries.
  total=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpu_check | cut -f1) ))
  echo "to carry: $(( total / 1048576 )) MiB (repository + .gpu_check; a call takes 64)"
  [ $total -lt $(( 64 * 1048576 )) ] || { echo "too large for one device call" >&2; exit 1; }
  echo "ready: carry .gpu_check and run benchmarks/gpu_check.sh \$OUT there"
  exit 0
fi

if [ -z "$OUT" ]; then
  echo "usage: benchmarks/gpu_check.sh [--cpu] OUT | --prepare (see the top of this file)" >&2
  exit 2
fi
if [ ! -f "$DATA/meta.json" ]; then
  echo "$DATA is not a dataset; run benchmarks/gpu_check.sh --prepare first (or pass --data)" >&2
  exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
: > "$LOG"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
STEPS="$WORK/steps.jsonl"
: > "$STEPS"
export PYTHONUNBUFFERED=1

# Packages the GPU machine lacks, from the carried wheels; the project itself, unless
# it is installed (CI's venv has it).
if [ -d .gpu_check/whl ] && ! $PY -c "import isal, imageio_ffmpeg" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .gpu_check/whl/*.whl >> "$LOG" 2>&1
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! $PY -c "import vid2vid.cli" 2>/dev/null; then
  $PY -m pip install -q --no-deps --no-build-isolation -e . >> "$LOG" 2>&1
fi
V2V=("$PY" -m vid2vid)
summary() { "$PY" benchmarks/gpu_check_summary.py "$WORK" "$OUT" "$MODE" "$PRESET" "$SIZE"; }

# step NAME SECONDS COMMAND...: runs it for at most SECONDS (rc 124 past that), its output
# into the log (and into FILE when STEP_OUT=FILE), its status and seconds into steps.jsonl;
# then gpu_check.json is written again, so a call cut short still brings back the numbers
# of the steps that finished.
step() {
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" | tee -a "$LOG"
  local t0=$(date +%s%N)
  if [ -n "${STEP_OUT:-}" ]; then
    timeout "$limit" "$@" > "$STEP_OUT" 2>> "$LOG"
  else
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG" | tail -n 3
  fi
  local rc=${PIPESTATUS[0]}
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $ms.0e-3}" >> "$STEPS"
  echo "   rc $rc" | tee -a "$LOG"
  summary > /dev/null
}

if [ "$MODE" = cpu ]; then
  DEV=cpu; PRESET=tiny; SIZE=64; TRAIN=(--steps 4 --frames 2); BIG=64; FRAMES=5
  BENCH=(--presets tiny --sizes 64 --frames 2 --repeats 2 --seconds 0.5 --no-compile)
  PREC=fp32; COMPILE=0
else
  DEV=cuda; PRESET=base; SIZE=256; TRAIN=(--minutes 3); BIG=512; FRAMES=300
  BENCH=(--presets base --sizes 256 --frames 4 --repeats 5 --seconds 1)
  PREC=bf16; COMPILE=1
fi

STEP_OUT="$WORK/env.json" step env 60 "$PY" -c "
import json, os, torch
gpu = torch.cuda.is_available()
print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,
    'device': torch.cuda.get_device_name(0) if gpu else 'cpu',
    'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if gpu else None,
    'cpu_cores': len(os.sched_getaffinity(0))}))"
step tests 90 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
STEP_OUT="$WORK/bench.json" step bench 150 "${V2V[@]}" bench --device $DEV "${BENCH[@]}" --json
step train 260 "${V2V[@]}" train --data "$DATA" --preset $PRESET --size $SIZE "${TRAIN[@]}" \
  --device $DEV --run-dir "$WORK/train"
# A model at the transfer size: its weights do not matter for frames/s.
step transfer_model 60 "${V2V[@]}" train --data "$DATA" --preset $PRESET --size $BIG --steps 1 \
  --frames 2 --device $DEV --run-dir "$WORK/big"
STEP_OUT="$WORK/transfer_eager.txt" step transfer_eager 60 "${V2V[@]}" transfer "$DATA/pose" "$DATA" \
  --checkpoint "$WORK/big" --device $DEV --precision $PREC --max-frames $FRAMES \
  -o "$WORK/eager.mp4"
if [ $COMPILE = 1 ]; then
  STEP_OUT="$WORK/transfer_compiled.txt" step transfer_compiled 150 "${V2V[@]}" transfer "$DATA/pose" \
    "$DATA" --checkpoint "$WORK/big" --device $DEV --precision $PREC --max-frames $FRAMES \
    --compile -o "$WORK/compiled.mp4"
fi
cat "$WORK"/transfer_*.txt >> "$LOG" 2>/dev/null

cat "$WORK"/transfer_*.txt >> "$LOG" 2>/dev/null || true
summary
status=$?
rm -rf "$WORK"
exit $status
