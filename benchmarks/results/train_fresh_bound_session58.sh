#!/bin/bash
# Session 58 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the shipped `general` (session 52's recipe:
# wide head, contrastive weight 3, three in four pairs drawn once, bf16) with ONE change, **--fresh-bound 0.5**:
# of each batch's 12 structures drawn once, 3 come beside their own copy bound to a membrane (NAME@membrane), a
# negative that differs in binding state only. Why: the drawn-once pairs (three in four of the contrastive loss's)
# were always free, while stray membranes come and go between a pair's two views (p_membrane), so the loss with the
# most weight (3) taught that a membrane does not change what a particle is; bound/free is the target furthest off
# (0.159 vs 0.70), the pose oracle cannot reach it (0.016), and `general`'s own binding output calls the held-out
# 7n4y free/surface/transmembrane at random on the protocol and at the training microscope alike (session 58).
# Seed 87, a fresh cosine over EPOCHS.
# Result: all 8 epochs (76,800 samples, 2,366,208 seen; monitor V 0.794, 0.797, 0.807, 0.795, 0.805, 0.799, 0.791,
# 0.800), level: the last against `general` +0.0020 [-0.0017, +0.0066] on the 207, real six -0.007, own SHREC'21
# -0.006 [-0.019, +0.006]; the monitor's epoch 3 +0.0000; bound/free on 8 held-out pairs level (free vs all bound
# 0.154 -> 0.197 in one draw, 0.167 -> 0.159 in another; ceiling 0.30); not shipped (docs/training_history.md,
# session 58).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide63} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-87} \
  EPOCHS=${EPOCHS:-8} MINUTES=${MINUTES:-125} EXTRA_ARGS="--fresh-bound 0.5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
