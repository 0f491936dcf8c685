#!/bin/bash
# Session 8, CPU: is the CPU plateau of sessions 6-7 (13 epochs at a constant 5e-5, monitor never above the
# shipped 0.689) the learning rate's? The same continuation (train_view_session6.sh: 595 classes, binding and
# view losses, from the shipped model) with a warm restart instead: 100 steps of linear warm-up to 1.5e-4
# (the GPU run's order of magnitude), cosine decay to 1 % over 7 epochs of 150 x 32.
cd /work/main
exec bash benchmarks/results/train_view_session6.sh --out runs/cos8 --seed 12 --lr-schedule cosine \
  --learning-rate 1.5e-4 --warmup-steps 100 --epochs 7 --max-minutes 85 "$@"
