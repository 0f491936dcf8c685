#!/bin/bash
# Session 13, CPU: capacity after DeepFinder's encoder. Session 11's `general` (flatten head) copied into the
# `flatten_conv` head: two 3^3 convolutions (64 channels) on the encoder's 10^3 x 64 maps, global mean + max
# pooling, and a Dense 128 that starts at zero and is added to the flatten head's Dense before its ReLU, so the
# run starts from session 11's function exactly (checked: embeddings equal). Same 595 classes and losses as
# session 11 (CosFace s16 m0.1, binding 1, paired contrast 1 at T 0.1), warm-up 100 steps to 1.5e-4, cosine
# decay over 9 epochs of 300 x 32, seed 19; checkpoint by the monitor V (cosine); chosen on the protocol after.
# Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --head flatten_conv \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/conv13 --init-model general --binding-weight 1 --contrast-weight 1 --temperature 0.1 \
  --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule cosine --learning-rate 1.5e-4 --warmup-steps 100 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 9 --patience 100 \
  --max-minutes 125 --workers 2 --seed 19 "$@"
