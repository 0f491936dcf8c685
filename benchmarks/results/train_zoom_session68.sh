#!/bin/bash
# Session 68 (2-core AMD EPYC, bf16 native, no GPU lent): the shipped `general` (session 67's zoom epoch 12,
# `--head flatten_conv_zoom --flatten-drop 1`, 2,865,408 seen) continued unchanged in design with a new seed (101),
# a new cosine from 5e-5 over 18 epochs of 300 x 32, 50-step warm-up, 140-minute limit: session 67's readout had the
# zoom branch still growing (its Dense's output RMS 0.914 at the end) and the 207's V still rising with the epochs.
# First leg (runs/zoom68, INIT=general, seed 101, 18 epochs set): 2 epochs (29 and 25 minutes beside remaking the
# protocol data and the zoom readout), stopped by hand so that a cosine the session could finish would start from its
# epoch 2 (monitor V 0.789, ...). Second leg: INIT=runs/zoom68/epoch_002.keras OUT=runs/zoom68b SEED=102 EPOCHS=6
# MINUTES=62 (a cosine from 5e-5 over 6 epochs of 300 x 32).
# Result: (filled in at the end of the session)
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-general} OUT=${OUT:-runs/zoom68} SEED=${SEED:-101} \
  EPOCHS=${EPOCHS:-18} MINUTES=${MINUTES:-140} exec bash benchmarks/results/train_zoom_session67.sh
