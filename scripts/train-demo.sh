#!/usr/bin/env bash
# The demo models of models/demo (README there): procedural heads → VAE → a fresh pipeline → multi-view diffusion
# UNet; the GS-LRM in two stages beside them; then packed into models/demo in the official layout. Every step is a
# facelift command with fixed seeds and thread counts (results are bit-exact for the same --threads); a step whose
# output exists is skipped, and the trainers resume from their newest checkpoint when run again.
set -euo pipefail
cd "$(dirname "$0")/.."
F="node bin/facelift.js"
mkdir -p runs/demo
if [ ! -f data/demo/train/gslrm/data_gslrm_train.txt ]; then
  $F synth heads -o data/demo/train --count 300 --resolution 128 --layout both --no-ply --val-fraction 0.02 \
    --seed 2026 --spacing 0.01 --elevations 0,20
fi
if [ ! -f data/demo/heldout/gslrm/data_gslrm_val.txt ]; then
  $F synth heads -o data/demo/heldout --count 20 --resolution 128 --layout both --no-ply --val-fraction 0.05 \
    --seed 99 --spacing 0.01 --elevations 0,20
fi
# GS-LRM, stage 1 (random views) then stage 2 (FaceLift's six views as inputs), on one thread beside the rest.
(
  $F train gslrm --config configs/demo/gslrm.yaml --threads 1 --turntable-frames 60 --turntable-samples 1 --json \
    > runs/demo/gslrm.jsonl 2> runs/demo/gslrm.log
  $F train gslrm --config configs/demo/gslrm_views.yaml --threads 1 --stop-at-pass 427 \
    --turntable-frames 60 --turntable-samples 1 --json > runs/demo/gslrm-views.jsonl 2> runs/demo/gslrm-views.log
) &
GSLRM=$!
if [ ! -f runs/demo/vae/vae/config.json ]; then
  $F train vae --config configs/demo/vae.yaml --threads 1 --json > runs/demo/vae.jsonl 2> runs/demo/vae.log
fi
if [ ! -f runs/demo/pipeline-init/model_index.json ]; then
  $F train new-pipeline --recipe configs/demo/pipeline.yaml --vae runs/demo/vae/vae -o runs/demo/pipeline-init
fi
$F train mvdiffusion --config configs/demo/mvdiffusion.yaml --threads 2 --json \
  > runs/demo/mvdiffusion.jsonl 2> runs/demo/mvdiffusion.log
wait "$GSLRM"
$F train pack-demo --pipeline runs/demo/mvdiffusion/pipeckpts --gslrm runs/demo/gslrm-views \
  --gslrm-config configs/demo/gslrm_views.yaml -o models/demo
for r in vae mvdiffusion gslrm gslrm-views; do cp "runs/demo/$r/curves.png" "models/demo/curves-$r.png"; done
