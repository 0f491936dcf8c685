#!/bin/bash
# Session 59 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the shipped `general` (session 52's recipe:
# wide head, contrastive weight 3, three in four pairs drawn once, bf16) with ONE change, **--shape-weight 10**: a
# last output regresses ten rotation- and mirror-invariant descriptors of each particle's structure (volume, radius
# of gyration, two axis ratios, the mass within six radii: deepfinder_unsup/simulate/descriptors.py) linearly from
# the embedding's DIRECTION, the drawn-once structures included (they had only the contrastive loss). Why: the
# classes a label-free k-means misses are the small and medium proteins that merge (session 52, by size), and
# nothing asked the embedding to be organised by size and shape beyond telling the training classes apart; the
# descriptors are a metric target any structure has, so a structure never trained on lands among those of its
# size and shape. The output starts at the least-squares readout of `general`'s embedding (16 batches; a first try
# with a random start, stopped after one epoch, had the loss at 0.58, above the targets' variance 0.20: at 5e-5 the
# head's weights cannot move far enough, so the loss would pull the embedding towards a random map). Seed 88, a
# fresh cosine over EPOCHS.
# Result: 6 of 7 epochs inside 90 minutes (57,600 samples, 2,347,008 seen; monitor V 0.789, 0.798, 0.795, 0.798,
# 0.798, 0.798), level: the monitor's epoch 5 against `general` +0.0015 [-0.0017, +0.0057] on the 207, real six
# -0.025, own SHREC'21 +0.002; the last +0.0010 / -0.027 / +0.003. The shape probe on never-trained structures rose
# 0.801 -> 0.819 (benchmarks/shape_probe.py). Not shipped (docs/training_history.md, session 59).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide64} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-88} \
  EPOCHS=${EPOCHS:-7} MINUTES=${MINUTES:-90} EXTRA_ARGS="--shape-weight 10 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
