#!/bin/bash
# Session 10, CPU: a third warm restart (SGDR-style) from the session-9 `general`: the same recipe as
# train_cosine_session9.sh (595 classes, binding and view losses, 100 warm-up steps to 1.5e-4, cosine to 1 %)
# over 8 epochs of 150 x 32 with a new seed, so every sub-tomogram is new.
cd /work/main
exec bash benchmarks/results/train_view_session6.sh --out runs/cos10 --seed 14 --lr-schedule cosine \
  --learning-rate 1.5e-4 --warmup-steps 100 --epochs 8 --max-minutes 112 "$@"
