#!/bin/bash
# Session 43 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): a wider head, as ONE change to the shipped
# recipe (benchmarks/results/train_fresh_next.sh: drawn-once pairs 0.5, CosFace 0.2, binding 2, contrast 1 at
# T 0.1, map weight 8, reuse 2, the first 4 convolutions frozen), from `general`: **--head flatten_conv_wide**,
# a second branch on DeepFinder's encoder maps (128 channels at 10^3, two of 256 at 5^3, mean + max pooled, a Dense
# that starts at zero: the run starts as `general`'s function), 1.8 M -> 4.8 M weights. Why: session 12's pose
# oracle put the limit in fitting (the network tells even its trained classes apart poorly), session 13's branch
# was the largest step since (+0.023 probe) and named "a wider branch" as the same lever, never run; session 39
# put the limit in "the objective and the network", and sessions 39 and 42 changed the objective without effect.
# Ending within MINUTES (default 105).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide43} INIT=${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras} SEED=${SEED:-67} \
  EPOCHS=${EPOCHS:-8} MINUTES=${MINUTES:-105} EXTRA_ARGS="--head flatten_conv_wide ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_fresh_next.sh
