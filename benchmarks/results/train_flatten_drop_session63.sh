#!/bin/bash
# Session 63 (2-core AMD EPYC, bf16 native, no GPU lent): session 62's run (`general` + --head
# flatten_conv_bilinear, session 52's recipe) with ONE change, **--flatten-drop 0.5**: in training, half of the
# samples lose the pose-bound flatten path (model.classifier.PathDrop) and must be classified by the pose-free
# branches (conv, wide, bilinear) alone. Why: session 62 measured the branches' part of the head's sum at 0.007
# (wide) to 0.6 (bilinear) against the flatten path's 5-7: nothing asked them to carry the classes, so the
# embedding stayed the paper's pose-bound head. At inference the layer is the identity: the run starts as `general`.
# Seed 94, a fresh cosine from 5e-5 over 10 epochs of 300 x 32.
# Result: (filled in after the run)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/drop63} SEED=${SEED:-94} EPOCHS=${EPOCHS:-10} MINUTES=${MINUTES:-100} \
  EXTRA_ARGS="--flatten-drop 0.5 ${EXTRA_ARGS:-}" exec bash benchmarks/results/train_bilinear_session62.sh
