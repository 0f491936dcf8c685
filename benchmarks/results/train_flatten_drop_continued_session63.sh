#!/bin/bash
# Session 63, second run: session 63's flatten-drop run (train_flatten_drop_session63.sh) continued UNCHANGED from
# its epoch 10 (runs/drop63/epoch_010.keras), seed 95, a fresh cosine from 5e-5 over 5 epochs, to see whether the
# pose-free branches alone (scored with the flatten path's Dense zeroed) keep rising: 0.634 at epoch 3, 0.656 at
# epoch 10 on the 207, against the whole head's 0.681 and `general`'s 0.682.
# Result: stopped by --max-minutes after 3 epochs (28,800 samples, 2,414,208 seen; the suite ran beside it), monitor
# V 0.783 / 0.778 / 0.788; epoch 3 against `general` on the 207 -0.0072 [-0.0106, -0.0034], the branches alone 0.654:
# no rise after a fresh warm-up. Not shipped (docs/training_history.md, session 63).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/drop63b} INIT=${INIT:-runs/drop63/epoch_010.keras} SEED=${SEED:-95} EPOCHS=${EPOCHS:-5} \
  MINUTES=${MINUTES:-31} exec bash benchmarks/results/train_flatten_drop_session63.sh
