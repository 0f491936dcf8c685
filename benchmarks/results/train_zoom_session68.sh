#!/bin/bash
# Session 68 (2-core AMD EPYC, bf16 native, no GPU lent): the shipped `general` (session 67's zoom epoch 12,
# `--head flatten_conv_zoom --flatten-drop 1`, 2,865,408 seen) continued unchanged in design with a new seed (101),
# a new cosine from 5e-5 over 18 epochs of 300 x 32, 50-step warm-up, 140-minute limit: session 67's readout had the
# zoom branch still growing (its Dense's output RMS 0.914 at the end) and the 207's V still rising with the epochs.
# First leg (runs/zoom68, INIT=general, seed 101, 18 epochs set): 2 epochs (29 and 25 minutes beside remaking the
# protocol data and the zoom readout), stopped by hand so that a cosine the session could finish would start from its
# epoch 2 (monitor V 0.789 / 0.787). Second leg: INIT=runs/zoom68/epoch_002.keras OUT=runs/zoom68b SEED=102 EPOCHS=6
# MINUTES=62 (a cosine from 5e-5 over 6 epochs of 300 x 32).
# Result: the second leg's wall-clock limit stopped it after 2 epochs (30 and 17 minutes: 3 s a step on this machine
# alone, 6 s beside scoring and tests), 4 epochs in all, 38,400 samples, 2,903,808 seen; monitor V 0.799 / 0.783.
# Against the shipped `general` (bash benchmarks/score_candidate.sh MODEL TAG): leg 1 epoch 2 +0.0008 [-0.0043,
# +0.0061] on the 207, real six -0.013 [-0.062, +0.038], own SHREC'21 -0.005 [-0.017, +0.010]; leg 2 epoch 2 (4 in
# all) -0.0007 [-0.0057, +0.0046], real six -0.061 [-0.115, 0.000], own SHREC'21 -0.016 [-0.029, -0.002] (wholly
# below): not shipped, not kept. A cosine restarted at 5e-5 spends its first epochs at the peak rate, where session 67
# too lost a little (its epochs 5 and 10); a session that can run only 4-8 epochs should set EPOCHS to what it can
# finish (docs/training_history.md, session 68).
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-general} OUT=${OUT:-runs/zoom68} SEED=${SEED:-101} \
  EPOCHS=${EPOCHS:-18} MINUTES=${MINUTES:-140} exec bash benchmarks/results/train_zoom_session67.sh
