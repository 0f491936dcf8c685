#!/bin/bash
# Session 12, CPU: the class list grown from 595 to 1,895 (1,000 more procedural seeds, 400-1,399, and 300 of
# them on a membrane), warm-started from session 11's `general`: its 595 class directions are kept in their
# columns (train.leads_class_list), the 1,300 new ones start fresh. Same losses as session 11 (CosFace s16 m0.1,
# binding 1, paired contrast 1 at T 0.1), warm-up 100 steps to 1.5e-4, cosine decay over 10 epochs of 300 x 32,
# seed 17; checkpoint by the monitor V (cosine); chosen on the protocol after. Seeds stay below the protocol's
# (1,000,000+) and the monitor's (2,000,000+). Design sets: benchmarks/design_sets.sh.
# As run: stopped by hand after epoch 8 of 10 (the 9th would have ended past the session's margin; the rate was
# then ~10 % of its peak), then `bash benchmarks/results/train_grow_session12.sh --resume --epochs 8` wrote
# model.keras and its card (the monitor's best, epoch 7). History: train_grow_session12_history.csv.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" procedural:1000:400 procedural:300:400@membrane \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/grow12 --init-model general --binding-weight 1 --contrast-weight 1 --temperature 0.1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule cosine --learning-rate 1.5e-4 --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 10 --patience 100 \
  --max-minutes 112 --workers 2 --seed 17 "$@"
