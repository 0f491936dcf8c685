#!/bin/bash
# Session 57 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): session 56's mirror-image run
# (benchmarks/results/train_mirrors_session56.sh, runs/wide60: --fresh-mass-band 0.35 and --fresh-mirrors 0.5, 2 of 3
# epochs, 2,471,808 seen, level after 19,200 samples) continued UNCHANGED from its epoch 2 for a whole session, so
# that the two hard negatives get the length every earlier change got. Seed 85, a fresh cosine over EPOCHS.
# Result: (filled in when scored; docs/training_history.md, session 57).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide61} INIT=${INIT:-runs/wide60/epoch_002.keras} SEED=${SEED:-85} EPOCHS=${EPOCHS:-8} \
  MINUTES=${MINUTES:-112} exec bash benchmarks/results/train_mirrors_session56.sh
