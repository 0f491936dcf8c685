#!/bin/bash
# Session 57 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 56's two hard negatives
# (--fresh-mass-band 0.35, --fresh-mirrors 0.5) WITHOUT one acquisition per batch, from the shipped `general`
# (session 52's recipe otherwise unchanged: wide head, contrastive weight 3, three in four pairs drawn once, bf16).
# Why: every one-acquisition run (sessions 54-57) stood about 0.01 lower on own SHREC'21, which mixes an acquisition
# per box, and session 57's continuation of the mirror run (runs/wide61, epoch 3) was wholly below there (-0.016
# [-0.029, -0.001]) while level on the 207 (+0.0006): a pair that shares its acquisition teaches no invariance across
# microscopes. This asks whether the hard negatives help on the shipped lineage without that cost. Seed 86, a fresh
# cosine over EPOCHS.
# Result: (filled in when scored; docs/training_history.md, session 57).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide62} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-86} \
  EPOCHS=${EPOCHS:-5} MINUTES=${MINUTES:-72} EXTRA_ARGS="--fresh-mass-band 0.35 --fresh-mirrors 0.5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
