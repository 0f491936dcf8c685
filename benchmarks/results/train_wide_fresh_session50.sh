#!/bin/bash
# Session 50 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage continued unchanged from
# session 49's kept epoch 7 (2,145,408 sub-tomograms seen), seed 74: the wide head, three in four contrastive pairs
# drawn once, cosine from 5e-5 over 7 epochs, bf16, within MINUTES (default 115: 6 epochs fitted). Level against the
# shipped `general` (docs/training_history.md, session 50): its epoch 6 kept as
# benchmarks/checkpoints/wide_session50.keras, which replaced this run's INIT
# (`git show 8ff84e2:benchmarks/checkpoints/wide_session49.keras > wide_session49.keras` to rerun it).
# The next continuation: INIT=benchmarks/checkpoints/wide_session50.keras OUT=runs/wide51 SEED=75 bash THIS_SCRIPT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide50} INIT=${INIT:-benchmarks/checkpoints/wide_session49.keras} SEED=${SEED:-74} \
  MINUTES=${MINUTES:-115} exec bash benchmarks/results/train_wide_fresh_session46.sh
