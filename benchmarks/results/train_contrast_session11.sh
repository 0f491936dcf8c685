#!/bin/bash
# Session 11, CPU: a change of objective, warm-started from session 10's `general`: the same 595 classes,
# CosFace and binding losses, but the batch's second half is OTHER sub-tomograms of the first half's structures
# (new pose, noise and microscope draw) and a supervised contrastive loss (NT-Xent, weight 1, temperature 0.1)
# asks each to find its partner among the 32 (replaces the 180-degree view loss). Warm-up 100 steps to 1.5e-4,
# cosine decay over 8 epochs of 150 x 32; checkpoint by the monitor V (cosine); chosen on the protocol after.
# Monitor set of this session (the earlier one's per-class count was not recorded):
#   deepfinder-unsup simulate --structures procedural:30:2000000 2uv8 6utj 6pxm 7n4y 7n4y@membrane
#     membrane:5tqq --config benchmarks/configs/monitor_microscope.json --per-class 40 --out runs/monitor --seed 5
# (benchmarks/design_sets.sh). This run's --val was maps_10A x 100, seed 2 (validation metrics only; the own
# SHREC'21 set of the protocol and of design_sets.sh is maps_10A x 40, seed 12).
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/con11 --init-model general --binding-weight 1 --contrast-weight 1 --temperature 0.1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule cosine --learning-rate 1.5e-4 --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 150 --epochs 8 --patience 100 \
  --max-minutes 120 --workers 2 --seed 15 "$@"
