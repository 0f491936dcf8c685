#!/bin/bash
# Session 55 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 54's `--one-acquisition-per-batch` run
# continued from its epoch 3 (runs/wide56/epoch_003.keras, 28,800 samples past the shipped model) for up to 7 more
# epochs (a fresh cosine over them, seed 81), to settle what 28,800 samples could not: level on the 207, the real six
# higher in the mean, own SHREC'21 lower.
# Result: 7 epochs (67,200 samples); the last +0.0034 [-0.0008, +0.0094] on the 207, real six +0.013, own SHREC'21
# -0.008; not shipped, kept as benchmarks/checkpoints/one_acquisition_session55.keras (docs/training_history.md, session 55).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide57} INIT=${INIT:-runs/wide56/epoch_003.keras} SEED=${SEED:-81} \
  EPOCHS=${EPOCHS:-7} MINUTES=${MINUTES:-140} EXTRA_ARGS="--one-acquisition-per-batch ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
