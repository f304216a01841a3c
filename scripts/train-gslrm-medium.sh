#!/usr/bin/env bash
# The medium GS-LRM of BENCHMARKS.md § "GS-LRM trained from scratch": 220 procedural heads at 128² (198 train,
# 22 held out), about an hour of training on 2 cores, then held-out scores and pictures.
# Extra arguments go to `facelift train gslrm` (e.g. --stop-after-minutes 60).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f data/synth-medium/gslrm/data_gslrm_train.txt ]; then
  node bin/facelift.js synth heads -o data/synth-medium --count 220 --resolution 128 --layout gslrm --no-ply \
    --val-fraction 0.1 --seed 5 --spacing 0.01
fi
node bin/facelift.js train gslrm --config configs/gslrm_synth_medium.yaml --threads 2 --turntable-frames 60 --turntable-samples 2 "$@"
node bin/facelift.js eval gslrm --config configs/gslrm_synth_medium.yaml --checkpoint runs/gslrm-synth-medium \
  --held data/synth-medium/gslrm/data_gslrm_val.txt --train data/synth-medium/gslrm/data_gslrm_train.txt \
  --pictures 4 -o runs/gslrm-synth-medium/heldout --threads 2
