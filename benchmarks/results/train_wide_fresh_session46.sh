#!/bin/bash
# Session 46 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage (sessions 43-45, level at
# about +0.002 on the 207 never-trained structures) continued from its last kept epoch with ONE change to the data,
# **--fresh-structures 0.75** (was 0.5): three in four of each batch's contrastive pairs are procedural structures
# drawn once. Why: the last change that moved the 207 with an interval above 0 was the drawn-once pairs (session
# 36); session 39's 0.9 ran on a GPU replay pool that used each simulated pair about 8 times, never on the CPU's
# reuse-2 source. Ending within MINUTES (default 120). Its INIT was replaced by this run's epoch 6
# (benchmarks/checkpoints/wide_session46.keras): `git show 40c2da6:benchmarks/checkpoints/wide_session45.keras`.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide46} INIT=${INIT:-benchmarks/checkpoints/wide_session45.keras} SEED=${SEED:-70} \
  EPOCHS=${EPOCHS:-7} MINUTES=${MINUTES:-120} EXTRA_ARGS="--fresh-structures 0.75 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_session43.sh
