#!/bin/bash
# Session 56 (2-core Intel Xeon with AMX, bf16 native, no GPU lent): the mass-band run
# (benchmarks/results/train_mass_band_session56.sh, runs/wide59) continued from its last epoch with ONE more change,
# **--fresh-mirrors 0.5**: half of each batch's structures drawn once come beside their own mirror image, a
# negative of the same mass, size and symmetry that differs in handedness only. Why: 375 of the shipped model's
# 2,680 wrong nearest neighbours on the protocol (14 %) are the structure's mirror image, where one class in 199
# would be chance (`python benchmarks/results/confusion_mass_session56.py`). Seed 84, a fresh cosine over EPOCHS.
# Result: the 45-minute limit let 2 of 3 epochs run (19,200 samples, 2,471,808 seen), level: -0.0003 [-0.0052,
# +0.0045] on the 207 against its INIT, +0.0016 [-0.0020, +0.0062] against `general`; mirror-image confusions 386 ->
# 364; not shipped (docs/training_history.md, session 56).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wide60} INIT=${INIT:-runs/wide59/epoch_007.keras} SEED=${SEED:-84} EPOCHS=${EPOCHS:-3} \
  MINUTES=${MINUTES:-45} EXTRA_ARGS="--fresh-mirrors 0.5 ${EXTRA_ARGS:-}" \
  exec bash benchmarks/results/train_mass_band_session56.sh
