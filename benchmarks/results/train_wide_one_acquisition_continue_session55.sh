#!/bin/bash
# Session 55 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 54's `--one-acquisition-per-batch` run
# continued from its epoch 3 (runs/wide56/epoch_003.keras, 28,800 samples past the shipped model) for up to 7 more
# epochs (a fresh cosine over them, seed 81), to settle what 28,800 samples could not: level on the 207, the real six
# higher in the mean, own SHREC'21 lower.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide57} INIT=${INIT:-runs/wide56/epoch_003.keras} SEED=${SEED:-81} \
  EPOCHS=${EPOCHS:-7} MINUTES=${MINUTES:-140} EXTRA_ARGS="--one-acquisition-per-batch ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
