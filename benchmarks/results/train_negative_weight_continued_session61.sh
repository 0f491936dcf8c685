#!/bin/bash
# Session 61 (2-core AMD EPYC, bf16 native, no GPU lent): session 60's short `--negative-weight 100` run (runs/wide66,
# 3 epochs: level on the three sets, the negatives' cluster tighter, their class column still calling none)
# continued with the same recipe from its last epoch: does the class output learn the negatives, and does the
# longer run stay level or move? Seed 91, a fresh cosine over EPOCHS.
# Result: not run (stopped within its first epoch: the session's slot went to the focal run and a diagnostic).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide67} INIT=${INIT:-runs/wide66/epoch_003.keras} SEED=${SEED:-91} EPOCHS=${EPOCHS:-7} \
  MINUTES=${MINUTES:-85} exec bash benchmarks/results/train_negative_weight_session60.sh
