#!/bin/bash
# Session 29, CPU: session 28's annealed recipe (margin 0.2, cosine from 4e-5 over 5 epochs; its epoch 3 shipped)
# continued from its last epoch (benchmarks/checkpoints/continue_session28.keras, 1,358,208 seen) with one change,
# a wider CosFace margin, 0.3 instead of 0.2 (session 27 widened 0.1 -> 0.2 and the annealed continuation of it gave
# the first 207-class interval wholly above 0 since session 21). Otherwise as session 28: 595 classes, s 16, binding
# 2, paired contrast 1 at T 0.1, --map-weight 8, benchmarks/configs/train_general_snr_particle2.json, bf16,
# --freeze-convs 4, a fresh seed 53. Every epoch kept (--keep-epochs), chosen only by the paired rule of
# docs/model_card.md. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/margin29 --init-model benchmarks/checkpoints/continue_session28.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.3 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 4e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 5 --patience 100 \
  --freeze-convs 4 --max-minutes 125 --workers 2 --seed 53 --keep-epochs "$@"
