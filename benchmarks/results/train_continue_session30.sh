#!/bin/bash
# Session 30, CPU: session 28's annealed recipe continued unchanged from its last epoch
# (benchmarks/checkpoints/continue_session28.keras, 1,358,208 seen): margin 0.2 (session 29's 0.3 was level), 595
# classes, s 16, binding 2, paired contrast 1 at T 0.1, --map-weight 8, train_general_snr_particle2.json, bf16,
# --freeze-convs 4; a cosine rate from 3e-5 over 5 epochs (session 28: 4e-5), a fresh seed 54. The point is to add
# samples to the one lineage that last moved the 207-class V (session 28, +0.004 per ~40 k): whatever the paired rule
# says, the last epoch becomes the next continuation's --init-model, so the lineage accumulates across sessions.
# Run as `bash benchmarks/results/train_continue_session30.sh` (3 epochs in 78 minutes: a fourth, judged by the
# longest so far, would have ended past 105; the cores shared with adaptation studies), then
# `bash benchmarks/results/train_continue_session30.sh --resume --max-minutes 32` (epoch 4).
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont30 --init-model benchmarks/checkpoints/continue_session28.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 3e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 5 --patience 100 \
  --freeze-convs 4 --max-minutes 105 --workers 2 --seed 54 --keep-epochs "$@"
