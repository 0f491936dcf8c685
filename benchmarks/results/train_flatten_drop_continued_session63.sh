#!/bin/bash
# Session 63, second run: session 63's flatten-drop run (train_flatten_drop_session63.sh) continued UNCHANGED from
# its epoch 10 (runs/drop63/epoch_010.keras), seed 95, a fresh cosine from 5e-5 over 5 epochs, to see whether the
# pose-free branches alone (scored with the flatten path's Dense zeroed) keep rising: 0.634 at epoch 3, 0.656 at
# epoch 10 on the 207, against the whole head's 0.681 and `general`'s 0.682.
# Result: (filled in after the run)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/drop63b} INIT=${INIT:-runs/drop63/epoch_010.keras} SEED=${SEED:-95} EPOCHS=${EPOCHS:-5} \
  MINUTES=${MINUTES:-31} exec bash benchmarks/results/train_flatten_drop_session63.sh
