#!/bin/bash
# Session 62 (2-core AMD EPYC, bf16 native, no GPU lent): the shipped `general` (session 52's recipe) with ONE change,
# **--head flatten_conv_bilinear**: the wide head plus a second-order branch (3^3 conv 64, 1^3 reduction to 32,
# bilinear pooling, a Dense from zero), so the run starts as the shipped function. Why: session 61 found the
# encoder's pose-bound maps keep the detail that separates own SHREC'21's medium pairs and the head's pose-free
# reduction (means and maxima) drops it; bilinear pooling is the pose-free pooling made for fine differences.
# Caveat measured before the run (benchmarks/results/shrec21_pooling_session62.py): over the FROZEN maps, no fixed
# pose-free pooling (second order included) beats the trained embedding; the branch's own convolution must learn it.
# Seed 93, a fresh cosine from 5e-5 over 7 epochs. The pooled numbers at RMS 10 (BILINEAR_SCALE): the first two
# starts (unit length; unit RMS, runs/bil62_rms1) left the branch at 2-3 % of the flatten path after 1-2 epochs.
# Result: 7 epochs (67,200 samples, 2,356,608 seen), monitor V 0.781-0.799 (epoch 4); against `general` the 207
# -0.0013 [-0.0047, +0.0028] (epoch 4), +0.0012 [-0.0031, +0.0063] (epoch 7); own SHREC'21's medium pairs not moved
# (1qvr / 3cf3 0.59 / 0.70 / 0.73). The branch's part of the head's sum 0.4-0.6 against the flatten path's 6-7. Level,
# not shipped (docs/training_history.md, session 62).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/bil62} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-93} \
  EPOCHS=${EPOCHS:-7} MINUTES=${MINUTES:-68} EXTRA_ARGS="--head flatten_conv_bilinear ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
