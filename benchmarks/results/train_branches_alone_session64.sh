#!/bin/bash
# Session 64 (2-core AMD EPYC, bf16 native, no GPU lent): the pose-free branches ALONE, trained on every sample.
# Session 63's flatten-drop run (runs/drop63, epoch 10: its branches alone 0.656 on the 207 against `general`'s
# 0.682) continued with --flatten-drop 1: the pose-bound flatten path removed in training and at inference
# (model.classifier.PathDrop at rate 1), so the head is the conv, wide and bilinear branches (global mean, max and
# second-order pooling of the encoder's maps) and every sample trains them and the encoder's free convolutions for
# them. Why: the note of session 63 named a pose-free head trained far longer as the lever a CPU session had not
# tried; the drop-0.5 run gave the branches half the samples and its restart's warm-up set it back, so this one
# starts with a short warm-up (50 steps). Seed 96, a cosine from 5e-5 over 20 epochs of 300 x 32.
# Result: (filled in when scored)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/alone64} INIT=${INIT:-runs/drop63/epoch_010.keras} SEED=${SEED:-96} EPOCHS=${EPOCHS:-20} \
  MINUTES=${MINUTES:-140} EXTRA_ARGS="--flatten-drop 1 --warmup-steps 50 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_bilinear_session62.sh
