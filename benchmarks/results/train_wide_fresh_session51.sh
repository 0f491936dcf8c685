#!/bin/bash
# Session 51 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the wide-head lineage continued unchanged from
# session 50's kept epoch 6 (2,203,008 sub-tomograms seen), seed 75: the wide head, three in four contrastive pairs
# drawn once, cosine from 5e-5 over 7 epochs, bf16, within MINUTES (default 110: the session began on a fresh
# machine that first remade the validation and monitor sets). Level against the shipped `general`, as sessions 49
# and 50 (docs/training_history.md, session 51): its epoch 5 kept as benchmarks/checkpoints/wide_session51.keras,
# which replaced this run's INIT (`git show da1f505:benchmarks/checkpoints/wide_session50.keras` to rerun it).
# Three continuations of the unchanged recipe stood +0.0019, +0.0024, +0.0023 above the shipped model: the
# lineage has stopped climbing; the next CPU session should change one lever rather than run this again.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide51} INIT=${INIT:-benchmarks/checkpoints/wide_session50.keras} SEED=${SEED:-75} \
  MINUTES=${MINUTES:-110} exec bash benchmarks/results/train_wide_fresh_session46.sh
