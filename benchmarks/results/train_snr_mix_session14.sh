#!/bin/bash
# Session 14, CPU: what the SNR is of. Until now every training box drew its SNR over everything in it, so a
# box with neighbours or a membrane got noise for all of them: at a nominal SNR of 0.2 a free rubisco (1bxn)
# box had a median 3.3x the noise its particle alone implies, a membrane-bound one 6.8x, a 70S ribosome 1.2x
# (runs/s14/noise_ratio.py; docs/simulation.md). The membrane was drowned exactly where it should tell bound
# from free. Here half the boxes draw the SNR of the central particle alone (`snr_reference: particle`: the
# context adds signal, not noise, as the dose sets the noise in a tomogram), half as before
# (benchmarks/configs/train_general_snr_mix.json). Everything else as session 13's run: session 13's
# `general` (flatten_conv head) continued on the same 595 classes and losses (CosFace s16 m0.1, binding 1, paired
# contrast 1 at T 0.1), warm-up 100 steps to 1.5e-4, cosine over 10 epochs of 300 x 32, seed 29; checkpoint by
# the monitor V (cosine); chosen on the protocol after. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/snr14 --init-model general --binding-weight 1 --contrast-weight 1 --temperature 0.1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general_snr_mix.json --lr-schedule cosine --learning-rate 1.5e-4 \
  --warmup-steps 100 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 10 --patience 100 \
  --max-minutes 100 --workers 2 --seed 29 "$@"
