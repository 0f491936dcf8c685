#!/bin/bash
# Session 31, CPU: the margin-0.2 lineage continued unchanged from session 30's last epoch
# (benchmarks/checkpoints/continue_session30.keras, 1,406,208 seen): margin 0.2, 595 classes, s 16, binding 2, paired
# contrast 1 at T 0.1, --map-weight 8, train_general_snr_particle2.json, bf16, --freeze-convs 4; a cosine rate from
# 3e-5 over 8 epochs, a fresh seed 55, at most 125 minutes (the session's training budget; two design-set studies,
# the CI run and a paired bootstrap shared the cores for part of it). The point, as in session 30: samples add up in
# one lineage, judged paired after several sessions.
# Run as `bash benchmarks/results/train_continue_session31.sh` (6 epochs in 2 h: the limit stopped it). Its init model
# was replaced by this run's last epoch (benchmarks/checkpoints/continue_session31.keras); restore it with
# `git show 87e5125:benchmarks/checkpoints/continue_session30.keras > benchmarks/checkpoints/continue_session30.keras`.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont31 --init-model benchmarks/checkpoints/continue_session30.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 3e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 8 --patience 100 \
  --freeze-convs 4 --max-minutes 125 --workers 2 --seed 55 --keep-epochs "$@"
