#!/bin/bash
# Session 48 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage continued unchanged (the
# wide head, three in four contrastive pairs drawn once, cosine from 5e-5 over 7 epochs) from session 47's epoch 6
# (benchmarks/checkpoints/wide_session47.keras), seed 72. Its 207-structure difference against `general` has risen
# by about +0.0016 per session with no change (+0.0048 [-0.0020, +0.0102] after session 47).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide48} INIT=${INIT:-benchmarks/checkpoints/wide_session47.keras} SEED=${SEED:-72} \
  MINUTES=${MINUTES:-125} exec bash benchmarks/results/train_wide_fresh_session46.sh
