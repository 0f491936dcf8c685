#!/bin/bash
# Session 18, CPU: continue the shipped `general` (session 17's model, runs/cont16 epoch 7; 964,608 sub-tomograms
# seen) with the same recipe as sessions 15-17 (CosFace s16 m0.1, binding weight 2, paired contrast 1 at T 0.1,
# benchmarks/configs/train_general_snr_particle2.json, bf16), a fresh seed (41: new draws of classes and
# microscopes), warm-up of 100 steps to 1.5e-4 then cosine over 7 epochs of 300 x 32. Checkpoint by the monitor
# V (cosine); chosen on the protocol after (benchmarks/protocol.py). Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont18 --init-model general --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 1.5e-4 \
  --warmup-steps 100 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 7 --patience 100 \
  --max-minutes 95 --workers 2 --seed 41 "$@"
