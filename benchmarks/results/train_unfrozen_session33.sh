#!/bin/bash
# Session 33, CPU: the whole encoder trained again, as ONE change to session 32's phase B (session 28's recipe:
# margin 0.2, 595 classes, s 16, binding 2, paired contrast 1 at T 0.1, --map-weight 8, bf16, the full microscope
# ranges of train_general_snr_particle2.json), from the lineage's last epoch
# (benchmarks/checkpoints/continue_session32.keras, 1,511,808 seen): --freeze-convs 0 instead of 4.
# Why: session 12's pose-oracle study found the features limited by fitting (capacity, learnt rotation invariance),
# and since session 24 the encoder's first four convolutions (the filters every later layer builds on) were frozen
# for speed, DeepFinder's segmentation filters as they came. Four CPU continuations with them frozen were level on
# the 207 never-trained structures; this asks whether the front of the encoder was the bound. Costs: a step is
# about 2.35x slower in the network alone (benchmarks/results/train_freeze_speed_session24.json).
# Cosine from 2e-5 over 5 epochs, ending within MINUTES (default 120).
# Run as `bash benchmarks/results/train_unfrozen_session33.sh`. It stopped itself after 3 epochs (its 120 minutes;
# 25, 34 and 36 minutes, adapt and purity studies and a paired bootstrap sharing the cores). Its init model was
# replaced by epoch 3 (benchmarks/checkpoints/continue_session33.keras, 1,540,608 seen); restore it with
# `git show 7c61480:benchmarks/checkpoints/continue_session32.keras > benchmarks/checkpoints/continue_session32.keras`.
set -euo pipefail
cd /work/main
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-120}
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine --warmup-steps 0 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 5 --patience 100 --freeze-convs 0 \
  --workers 2 --keep-epochs --out runs/unf33 --init-model benchmarks/checkpoints/continue_session32.keras \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 2e-5 --max-minutes "$MINUTES" \
  --seed 58
