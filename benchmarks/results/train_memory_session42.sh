#!/bin/bash
# Session 42 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): a cross-batch memory for the contrastive loss,
# as ONE change to the shipped recipe (benchmarks/results/train_fresh_next.sh: drawn-once pairs 0.5, CosFace 0.2,
# binding 2, contrast 1 at T 0.1, map weight 8, reuse 2, the first 4 convolutions frozen), from `general`:
# **--contrast-memory 2048**, the last 2,048 embeddings of structures drawn once (8 a step, 256 steps back) kept
# as more negatives of the contrastive loss (XBM, Wang et al. 2020). Why: session 39's reading put the limit in
# the objective, not the amount of training, and proposed instance discrimination of never-seen shapes with many
# negatives per step; a batch of 32 gives each row 30 negatives, the memory 2,000 more, at the cost of a matrix
# product. Ending within MINUTES (default 110).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/memory42} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-66} \
  EPOCHS=${EPOCHS:-8} MINUTES=${MINUTES:-110} EXTRA_ARGS="--contrast-memory ${MEMORY:-2048} ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_fresh_next.sh
