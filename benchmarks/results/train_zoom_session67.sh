#!/bin/bash
# Session 67 (2-core AMD EPYC, bf16 native, no GPU lent): session 66's zoom run continued unchanged in design
# (`--head flatten_conv_zoom --flatten-drop 1`) from its kept epoch 5 (benchmarks/checkpoints/zoom_session66.keras, in git at cc87f1f,
# 2,750,208 seen), a new cosine from 5e-5 over 18 epochs of 300 x 32, 50-step warm-up, seed 100, 140-minute limit:
# the zoom branch had only begun to take part (its Dense's output RMS 0.076 against the other branches' 0.4-2).
# Result: stopped by hand during epoch 13 (to free the cores for shipping): 12 epochs, 115,200 samples, 2,865,408
# seen; the zoom Dense's output RMS 0.076 -> 0.914; monitor V 0.786-0.802; the 207 against session 52's `general`:
# epoch 5 -0.0006 [-0.0057, +0.0044], epoch 10 +0.0031 [-0.0005, +0.0072], epoch 12 0.6911, +0.0067 [+0.0012,
# +0.0119], real six 0.963 (+0.039 [-0.031, +0.113]), own SHREC'21 0.587 (+0.006 [-0.011, +0.023]). Epoch 12 shipped
# as `general` (docs/training_history.md, session 67). Continue it with INIT=general (its card keeps the head and,
# since session 67, --flatten-drop 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-benchmarks/checkpoints/zoom_session66.keras} OUT=${OUT:-runs/zoom67} SEED=${SEED:-100} \
  EPOCHS=${EPOCHS:-18} MINUTES=${MINUTES:-140} exec bash benchmarks/results/train_zoom_session66.sh
