#!/bin/bash
# Session 67 (2-core AMD EPYC, bf16 native, no GPU lent): session 66's zoom run continued unchanged in design
# (`--head flatten_conv_zoom --flatten-drop 1`) from its kept epoch 5 (benchmarks/checkpoints/zoom_session66.keras,
# 2,750,208 seen), a new cosine from 5e-5 over 18 epochs of 300 x 32, 50-step warm-up, seed 100, 140-minute limit:
# the zoom branch had only begun to take part (its Dense's output RMS 0.076 against the other branches' 0.4-2).
# Result: RESULT
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-benchmarks/checkpoints/zoom_session66.keras} OUT=${OUT:-runs/zoom67} SEED=${SEED:-100} \
  EPOCHS=${EPOCHS:-18} MINUTES=${MINUTES:-140} exec bash benchmarks/results/train_zoom_session66.sh
