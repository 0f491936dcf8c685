#!/bin/bash
# Session 54 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 52's recipe (contrastive weight 3, the
# shipped `general` made by it) from the shipped model with ONE change: **--temperature 0.2** (0.1 since session 11,
# never varied). Why: in session 53's runs the contrastive term stood near 1.4 (a random embedding: ln 31 = 3.4), so
# each anchor finds its partner among the batch's 31 others at about e^-1.4 = 0.25: the task is far from solved and
# at T = 0.1 its gradient goes mostly to the few nearest negatives. A warmer softmax spreads it over all of them, the
# uniform push apart that k-means over 207 never-seen classes scores. Ending within MINUTES (default 140).
# Result: stopped after 6 epochs, level on the 207 (epoch 6: -0.0003 [-0.0053, +0.0050]), not shipped
# (docs/training_history.md, session 54).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide55} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-79} \
  MINUTES=${MINUTES:-140} EXTRA_ARGS="--temperature 0.2 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
