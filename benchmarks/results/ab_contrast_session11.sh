#!/bin/bash
# Session 11, CPU: a short A/B of the contrastive loss at equal budget. Both arms start from session 10's
# `general` (runs/s11/general_s10.keras), the same 595 classes, CosFace + binding loss, 3 epochs of 150 x 32,
# warm-up 100 steps to 1.5e-4 then cosine, seed 16, one simulation worker each (run side by side); arm "con"
# adds --contrast-weight 1 (T 0.1), arm "base" nothing (no view loss either). Scored on the protocol after.
cd /work/main
ARM=$1; shift
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/ab11_$ARM --init-model runs/s11/general_s10.keras --binding-weight 1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule cosine --learning-rate 1.5e-4 --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 150 --epochs 3 --patience 100 \
  --max-minutes 55 --workers 1 --seed 16 "$@"
