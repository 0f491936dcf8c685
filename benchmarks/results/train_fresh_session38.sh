#!/bin/bash
# Session 38's run (2-core AMD EPYC with AVX2 only again, so float32): session 37's run (session 36's recipe,
# structures drawn once with --fresh-structures 0.5, microscopes with defocus 1-8 µm,
# benchmarks/configs/train_general_defocus8.json) continued from its epoch 2
# (benchmarks/checkpoints/defocus_session37.keras), started before that checkpoint was scored (so that the
# session's training hours are not spent waiting) and kept only if both pass the ship rule. New seed, a cosine over
# 3 epochs (the last two sessions' 4-epoch cosines stopped at epoch 2 with the rate still high), ending within
# 110 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=benchmarks/checkpoints/defocus_session37.keras SEED=63 EPOCHS=3 MINUTES=110 PRECISION=auto OUT=runs/fresh38 \
  SIM_CONFIG=benchmarks/configs/train_general_defocus8.json bash benchmarks/results/train_fresh_next.sh
# The run stopped after its first epoch (60 minutes beside the evaluations; a second would have ended past the
# 110 minutes). Its second epoch, the same cosine, continued from runs/fresh38/last.keras within 70 minutes:
#   INIT=benchmarks/checkpoints/defocus_session37.keras SEED=63 EPOCHS=3 MINUTES=70 OUT=runs/fresh38 \
#   SIM_CONFIG=benchmarks/configs/train_general_defocus8.json EXTRA_ARGS=--resume bash benchmarks/results/train_fresh_next.sh
