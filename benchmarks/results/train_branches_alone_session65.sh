#!/bin/bash
# Session 65 (2-core AMD EPYC, bf16 native, no GPU lent): session 64's branches-alone run continued unchanged in
# design (`--flatten-drop 1`: the pose-free conv, wide and bilinear branches are the whole head) from its epoch 16
# (benchmarks/checkpoints/branches_alone_session64.keras, 2,539,008 seen), a new cosine from a lower peak (3e-5, as
# the restart of session 63 set its run back at 5e-5) over 18 epochs of 300 x 32, 50-step warm-up, seed 97,
# 125-minute limit.
# Result: stopped by --max-minutes after 17 epochs (163,200 samples, 2,702,208 seen); monitor V 0.769 -> 0.792-0.798
# over epochs 12-17; the 207: epoch 7 0.6813 (-0.0029 [-0.0087, +0.0029] against `general`), epoch 17 0.6789
# (-0.0008 [-0.0052, +0.0039]: level), real six 0.963 (+0.018 [-0.050, +0.096]), own SHREC'21 0.570 (-0.011
# [-0.026, +0.005]). Level with `general`, not shipped; epoch 17 kept as
# benchmarks/checkpoints/branches_alone_session65.keras (docs/training_history.md, session 65). The session-64
# checkpoint INIT names is in git (82e5d9f).
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-benchmarks/checkpoints/branches_alone_session64.keras} OUT=${OUT:-runs/alone65} SEED=${SEED:-97} \
  EPOCHS=${EPOCHS:-18} MINUTES=${MINUTES:-125} EXTRA_ARGS="--learning-rate 3e-5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_branches_alone_session64.sh
