#!/bin/bash
# Session 32, CPU: the curriculum from sharp microscopes (proposed in sessions 12 and 23, never run), as ONE change to
# session 28's recipe (margin 0.2, 595 classes, s 16, binding 2, paired contrast 1 at T 0.1, --map-weight 8, bf16,
# --freeze-convs 4), from the lineage's last epoch (benchmarks/checkpoints/continue_session31.keras, 1,463,808 seen).
# Phase A: the sharper half of every microscope range (benchmarks/configs/train_general_sharp.json: SNR 0.17-1,
# defocus 1-3.5 um, tilts to +-60..70, B 0-750, at most 2 neighbours, half the background), cosine from 3e-5 over
# 4 epochs, at most 55 minutes. Phase B: back to the full ranges (train_general_snr_particle2.json) from phase A's
# last epoch, cosine from 2e-5 over 4 epochs, ending by DEADLINE (UTC). Why: the information-limit study (session 12)
# found the network underfits even its own classes (9 % training accuracy); sharp samples carry the class signal
# the noisy ones bury, so they may teach finer shape differences that the full ranges then make robust.
# Run as `bash benchmarks/results/train_curriculum_session32.sh`. Phase A stopped itself after 2 epochs (55 minutes),
# phase B after 3 (its deadline; a paired bootstrap and two adapt studies shared the cores). Its init model was
# replaced by phase B's last epoch (benchmarks/checkpoints/continue_session32.keras); restore it with
# `git show 95add87:benchmarks/checkpoints/continue_session31.keras > benchmarks/checkpoints/continue_session31.keras`.
set -euo pipefail
cd /work/main
source benchmarks/configs/structures_595.sh
DEADLINE=${DEADLINE:-"21:45"}
common=(--structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5
  --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 --temperature 0.1 --loss cosface
  --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine --warmup-steps 0 --precision mixed_bfloat16
  --batch-size 32 --steps-per-epoch 300 --epochs 4 --patience 100 --freeze-convs 4 --workers 2 --keep-epochs)
deepfinder-unsup train "${common[@]}" --out runs/cur32a --init-model benchmarks/checkpoints/continue_session31.keras \
  --sim-config benchmarks/configs/train_general_sharp.json --learning-rate 3e-5 --max-minutes 55 --seed 56
last_a=$(ls runs/cur32a/epoch_*.keras | sort | tail -1)
minutes_left=$(( ($(date -d "$DEADLINE" +%s) - $(date +%s)) / 60 ))
deepfinder-unsup train "${common[@]}" --out runs/cur32b --init-model "$last_a" \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 2e-5 --max-minutes "$minutes_left" \
  --seed 57
