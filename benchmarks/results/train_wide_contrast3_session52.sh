#!/bin/bash
# Session 52 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage, flat for three sessions
# of the unchanged recipe (sessions 49-51: +0.0019, +0.0024, +0.0023 on the 207 against the shipped `general`),
# continued from its last kept epoch (benchmarks/checkpoints/wide_session51.keras, 2,251,008 seen) with ONE change:
# **--contrast-weight 3** (1 since session 11, never varied). Why: three in four of each batch's pairs are
# procedural structures drawn once, learnt from by the contrastive loss alone, and that loss asks for what the
# protocol scores (two poses of a never-seen structure close, other structures apart); beside CosFace and the
# binding loss (weight 2) it held a third of the objective's weight. Session 52's true-pose oracle by mass
# quartile (runs/s52/oracle_by_size.py: 0.25, 0.44, 0.78, 0.90 nearest-neighbour purity against the model's
# 0.11, 0.18, 0.40, 0.60) put the missing pose invariance in every size, most in the larger half, so the lever is
# the pose-invariant loss's share, not a size-weighted draw. Ending within MINUTES (default 110).
# Its epoch 4 (the monitor's choice) was shipped as `general` (docs/training_history.md, session 52) and its INIT
# removed: `git show 0cd3ff7:benchmarks/checkpoints/wide_session51.keras > wide_session51.keras` to rerun it.
# Session 53 continued it from the shipped model (INIT=deepfinder_unsup/pretrained/f_theta_general.keras
# OUT=runs/wide54 SEED=78 MINUTES=58, 2 epochs): level on the 207, not shipped (docs/training_history.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide52} INIT=${INIT:-benchmarks/checkpoints/wide_session51.keras} SEED=${SEED:-76} \
  MINUTES=${MINUTES:-110} EXTRA_ARGS="--contrast-weight 3 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_fresh_session46.sh
