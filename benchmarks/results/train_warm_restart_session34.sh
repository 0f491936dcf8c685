#!/bin/bash
# Session 34, CPU: a warm restart, as ONE change to the lineage's recipe (session 32's phase B = session 28's recipe:
# margin 0.2, 595 classes, s 16, binding 2, paired contrast 1 at T 0.1, --map-weight 8, bf16, --freeze-convs 4, the
# full microscope ranges of train_general_snr_particle2.json), from the lineage's last epoch
# (benchmarks/checkpoints/continue_session33.keras, 1,540,608 seen, its whole encoder trained in session 33):
# 100 warm-up steps to a peak of 1.5e-4 and a cosine decay over 6 epochs, instead of a cosine from 2e-5.
# Why: sessions 8-10's warm restarts to 1.5e-4 each added about +0.01 probe and +0.006-0.010 V ("the rate, not the
# CPU, held the continuation back"); since session 11 every continuation started at 2e-5 - 6e-5 and the last six
# came out level. Ending within MINUTES (default 140).
# Run as `bash benchmarks/results/train_warm_restart_session34.sh`: all 6 epochs in 115 minutes (912-1430 s each, a test
# suite, two CI runs and a paired bootstrap sharing the cores). Its init model was replaced by epoch 6
# (benchmarks/checkpoints/continue_session34.keras, 1,598,208 seen); restore it with
# `git show f09cdff:benchmarks/checkpoints/continue_session33.keras > benchmarks/checkpoints/continue_session33.keras`.
set -euo pipefail
cd /work/main
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-140}
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 6 --patience 100 --freeze-convs 4 \
  --workers 2 --keep-epochs --out runs/warm34 --init-model benchmarks/checkpoints/continue_session33.keras \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 1.5e-4 --max-minutes "$MINUTES" \
  --seed 59
