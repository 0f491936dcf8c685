#!/bin/bash
# Session 54 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 52's recipe (contrastive weight 3, the
# shipped `general` made by it) from the shipped model with ONE change: **--one-acquisition-per-batch**. Why: each
# sub-tomogram drew its own microscope, so a contrastive pair differed by microscope as well as pose, and a batch's
# other structures could be told apart by their microscopes' looks; a user's data set (and the protocol) is one
# acquisition, and what it needs is pose invariance and structure under one microscope. With one draw per batch the
# pair differs by pose, position, neighbours and noise only, and the negatives are other structures under the same
# microscope; the class loss still sees every microscope across batches. A short run (3 epochs, the cosine over
# them) to compare with session 53's two epochs of the unchanged recipe (-0.0018, -0.0034 on the 207).
# Result: level on the 207 (epoch 3: +0.0000 [-0.0038, +0.0044]), not shipped; EPOCHS=7 MINUTES=140 for a
# longer run (docs/training_history.md, session 54).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide56} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-80} \
  EPOCHS=${EPOCHS:-3} MINUTES=${MINUTES:-50} EXTRA_ARGS="--one-acquisition-per-batch ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_wide_contrast3_session52.sh
