#!/bin/bash
# Session 64 (2-core AMD EPYC, bf16 native, no GPU lent): the pose-free branches ALONE, trained on every sample.
# Session 63's flatten-drop run (runs/drop63, epoch 10: its branches alone 0.656 on the 207 against `general`'s
# 0.682) continued with --flatten-drop 1: the pose-bound flatten path removed in training and at inference
# (model.classifier.PathDrop at rate 1), so the head is the conv, wide and bilinear branches (global mean, max and
# second-order pooling of the encoder's maps) and every sample trains them and the encoder's free convolutions for
# them. Why: the note of session 63 named a pose-free head trained far longer as the lever a CPU session had not
# tried; the drop-0.5 run gave the branches half the samples and its restart's warm-up set it back, so this one
# starts with a short warm-up (50 steps). Seed 96, a cosine from 5e-5 over 20 epochs of 300 x 32.
# Result: 16 epochs (stopped by --max-minutes; 153,600 samples, 2,539,008 seen), monitor V 0.740 -> 0.792 (epoch 16);
# the 207 0.6595 (epoch 4), 0.6585 (7), 0.665 (14), 0.670 (16: -0.0057 [-0.0115, -0.0010] against `general`), real
# six 0.914 (+0.009), own SHREC'21 0.568 (-0.016). Below, still rising; not shipped; epoch 16 kept as
# benchmarks/checkpoints/branches_alone_session64.keras (docs/training_history.md, session 64; continued by
# train_branches_alone_session65.sh, whose epoch 17 replaced it; in git at 82e5d9f).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/alone64} INIT=${INIT:-runs/drop63/epoch_010.keras} SEED=${SEED:-96} EPOCHS=${EPOCHS:-20} \
  MINUTES=${MINUTES:-140} EXTRA_ARGS="--flatten-drop 1 --warmup-steps 50 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_bilinear_session62.sh
