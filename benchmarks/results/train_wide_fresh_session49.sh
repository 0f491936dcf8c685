#!/bin/bash
# Session 49 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage continued unchanged from
# the shipped `general` (session 48's epoch 7, 2,078,208 sub-tomograms seen), seed 73: the wide head, three in four
# contrastive pairs drawn once, cosine from 5e-5 over 7 epochs, bf16, within MINUTES (default 125). Level against
# `general` (its epoch 7 +0.0019 [-0.0014, +0.0048] on the 207; docs/training_history.md, session 49): epoch 7 kept as
# benchmarks/checkpoints/wide_session49.keras. The next continuation:
# INIT=benchmarks/checkpoints/wide_session49.keras OUT=runs/wide50 SEED=74 bash THIS_SCRIPT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide49} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-73} \
  MINUTES=${MINUTES:-125} exec bash benchmarks/results/train_wide_fresh_session46.sh
