#!/bin/bash
# Session 47 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 46's run continued unchanged (the
# wide head, three in four contrastive pairs drawn once) from its last epoch, seed 71, to tell the lineage's drift
# from session 46's change. Stopped by hand after epoch 6 (its 125 minutes would have ended epoch 7 unfinished).
# Its INIT was replaced by this run's epoch 6 (benchmarks/checkpoints/wide_session47.keras):
# `git show a155a21:benchmarks/checkpoints/wide_session46.keras`.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide47} INIT=${INIT:-benchmarks/checkpoints/wide_session46.keras} SEED=${SEED:-71} \
  MINUTES=${MINUTES:-125} exec bash benchmarks/results/train_wide_fresh_session46.sh
