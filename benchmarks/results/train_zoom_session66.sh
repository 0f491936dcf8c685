#!/bin/bash
# Session 66 (2-core AMD EPYC, bf16 native, no GPU lent): the zoom branch (`--head flatten_conv_zoom`: the box's
# central half upsampled 2x through the same encoder, pooled, added through a Dense that starts at zero) on session
# 65's kept branches-alone model (benchmarks/checkpoints/branches_alone_session65.keras, in git at 650748a, 2,702,208 seen; the same
# design otherwise, `--flatten-drop 1`), so the run starts as that model's function. Why: by mass quartile the
# smallest structures keep the least of the pose oracle's purity (session 52: 40-45 %), and 7 voxels across are 2
# in the encoder's 10^3 maps. Cosine from 5e-5 over 8 epochs of 300 x 32, 50-step warm-up, seed 99, 78 minutes
# (restarted after 5 epochs without the branch's x 20 scale, runs/zoom66_unscaled: its Dense's output had reached
# an RMS of 0.018 against the other branches' 0.4-2.1, so the branch took no part).
# Result: stopped by --max-minutes after 5 epochs (48,000 samples, 2,750,208 seen); monitor V 0.773-0.787; the zoom
# Dense's output RMS 0.012 -> 0.076 (the other branches 0.37-1.97); the 207: epoch 5 0.6798 (-0.0023 [-0.0082, +0.0025]
# against `general`: level), real six 0.933 (+0.014), own SHREC'21 0.566 (-0.014). Not shipped; epoch 5 kept as
# benchmarks/checkpoints/zoom_session66.keras (docs/training_history.md, session 66).
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-benchmarks/checkpoints/branches_alone_session65.keras} OUT=${OUT:-runs/zoom66} SEED=${SEED:-99} \
  EPOCHS=${EPOCHS:-8} MINUTES=${MINUTES:-78} EXTRA_ARGS="--head flatten_conv_zoom --learning-rate 5e-5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_branches_alone_session64.sh
