#!/bin/bash
# Session 57 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the shipped `general` (session 52's recipe:
# wide head, contrastive weight 3, three in four pairs drawn once, bf16) with ONE change,
# **--one-acquisition-per-view**: the first sub-tomogram of every pair shares one acquisition, the second another, so
# each contrastive pair spans two microscopes while a row's negatives share its microscope or its partner's.
# Why: one acquisition per batch (sessions 54-57) keeps negatives under one microscope but lets both views of a pair
# share it too; every such run stood about 0.01 lower on own SHREC'21, which draws an acquisition per box, and
# session 57's continuation was wholly below there (-0.016 [-0.029, -0.001]) while level on the 207. Seed 86, a
# fresh cosine over EPOCHS.
# Result: all 5 epochs (48,000 samples, 2,337,408 seen; monitor V 0.798, 0.797, 0.795, 0.798, 0.801), level: the last
# against `general` +0.0006 [-0.0038, +0.0044] on the 207, real six -0.011, own SHREC'21 -0.005 [-0.018, +0.008] (the
# one-acquisition runs' -0.016 there no longer wholly below, but no gain); not shipped (docs/training_history.md,
# session 57).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide62} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-86} \
  EPOCHS=${EPOCHS:-5} MINUTES=${MINUTES:-72} EXTRA_ARGS="--one-acquisition-per-view ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
