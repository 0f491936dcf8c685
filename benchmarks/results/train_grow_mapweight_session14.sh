#!/bin/bash
# Session 14, CPU: session 12's grown list (595 -> 1,895 classes: procedural seeds 400-1,399, 300 of them on a
# membrane) again, now from session 13's `general` (flatten_conv head, 763 k samples seen) and with the real
# structures weighted up: `--map-weight 3.4` draws each of the 44 classes made from a map or model file 3.4x as
# often as one made by code, so they keep the ~7.6 % share they had in the 595 list (session 12's grow run gave
# them 2.4 % and lost 0.05 V on the real held-out complexes). The 595 classes' output directions are kept
# (train.leads_class_list). Same losses as sessions 11-13 (CosFace s16 m0.1, binding 1, paired contrast 1 at
# T 0.1), warm-up 100 steps to 1.5e-4, cosine decay over 10 epochs of 300 x 32, seed 23; checkpoint by the
# monitor V (cosine); chosen on the protocol after. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" procedural:1000:400 procedural:300:400@membrane \
  --map-weight 3.4 \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/grow14 --init-model general --binding-weight 1 --contrast-weight 1 --temperature 0.1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule cosine --learning-rate 1.5e-4 --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 10 --patience 100 \
  --max-minutes 115 --workers 2 --seed 23 "$@"
