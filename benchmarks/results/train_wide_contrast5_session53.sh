#!/bin/bash
# Session 53 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 52's one change (--contrast-weight
# 1 -> 3) moved the 207 never-trained structures with an interval above 0 (+0.0044 [+0.0014, +0.0087]) where three
# sessions of the unchanged recipe had not. One run cannot tell the lever from the lineage's noise, so this run asks
# for a dose-response: the same recipe from the shipped `general` (session 52's epoch 4, 2,289,408 seen) with the
# weight raised again, **--contrast-weight 5**, seed 77. If the lever is real, 5 should move the 207 again; if
# it is noise, it will not. Ending within MINUTES (default 100). Result: 4 epochs, level on the 207 at the monitor's
# epoch 4 (-0.0005 [-0.0052, +0.0041]), not shipped (docs/training_history.md, session 53).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide53} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-77} \
  MINUTES=${MINUTES:-100} EXTRA_ARGS="--contrast-weight 5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_fresh_session46.sh
