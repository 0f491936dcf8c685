#!/bin/bash
# Session 16, CPU: more steps. Session 15's run (runs/bind15, epoch 7: binding weight 2, the particle's SNR in two
# boxes of three) matched session 14's shipped `general` on the protocol within noise (three scores up, three
# down) with 67,200 more sub-tomograms seen, and made the membrane a k-means direction at the training microscope.
# Every CPU session so far moved the protocol by about +0.01 with ~70 k samples, so this run continues that
# model with the same recipe (CosFace s16 m0.1, binding 2, paired contrast 1 at T 0.1,
# benchmarks/configs/train_general_snr_particle2.json), a fresh warm-up of 100 steps to 1.5e-4 and cosine over
# 8 epochs of 300 x 32, seed 37; checkpoint by the monitor V (cosine); chosen on the protocol after.
# The init model is session 15's last epoch (not committed: remake it with train_binding_session15.sh).
# Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont16 --init-model runs/bind15/last_carded.keras --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 1.5e-4 \
  --warmup-steps 100 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 8 --patience 100 \
  --max-minutes 100 --workers 2 --seed 37 "$@"
