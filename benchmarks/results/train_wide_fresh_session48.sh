#!/bin/bash
# Session 48 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage continued unchanged (the
# wide head, three in four contrastive pairs drawn once, cosine from 5e-5 over 7 epochs) from session 47's epoch 6
# (benchmarks/checkpoints/wide_session47.keras), seed 72. Its 207-structure difference against `general` has risen
# by about +0.0016 per session with no change (+0.0048 [-0.0020, +0.0102] after session 47). Its epoch 7 shipped as
# `general` (+0.0053 [+0.0008, +0.0093]); its INIT was then removed: `git show 7403d8b^:benchmarks/checkpoints/
# wide_session47.keras`. The next continuation starts from the shipped model:
# INIT=deepfinder_unsup/pretrained/f_theta_general.keras OUT=runs/wide49 SEED=73 bash THIS_SCRIPT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide48} INIT=${INIT:-benchmarks/checkpoints/wide_session47.keras} SEED=${SEED:-72} \
  MINUTES=${MINUTES:-125} exec bash benchmarks/results/train_wide_fresh_session46.sh
