#!/bin/bash
# Session 57 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 56's mirror-image run
# (benchmarks/results/train_mirrors_session56.sh, runs/wide60: --fresh-mass-band 0.35 and --fresh-mirrors 0.5, 2 of 3
# epochs, 2,471,808 seen, level after 19,200 samples) continued UNCHANGED from its epoch 2 for a whole session, so
# that the two hard negatives get the length every earlier change got. Seed 85, a fresh cosine over EPOCHS.
# Result: stopped after 4 of 8 epochs (monitor V 0.797, 0.800, 0.808, 0.806) for session 57's next run; epoch 3
# (28,800 samples, 2,500,608 seen) against `general`: the 207 +0.0006 [-0.0041, +0.0055], real six +0.005, own
# SHREC'21 -0.016 [-0.029, -0.001], wholly below 0; not shipped (docs/training_history.md, session 57).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide61} INIT=${INIT:-runs/wide60/epoch_002.keras} SEED=${SEED:-85} EPOCHS=${EPOCHS:-8} \
  MINUTES=${MINUTES:-112} exec bash benchmarks/results/train_mirrors_session56.sh
