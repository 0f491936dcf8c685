#!/bin/bash
# Session 21, CPU: test session 20's guess about the own-SHREC'21 drift. Continue session 20's last epoch
# (benchmarks/checkpoints/continue_session20.keras, 1,118,208 sub-tomograms seen) with the same recipe as sessions
# 19-20 (CosFace s16 m0.1, binding weight 2, paired contrast 1 at T 0.1, benchmarks/configs/
# train_general_snr_particle2.json, bf16, no warm-up, cosine from 5e-5), changing one thing: `--map-weight 8`, so
# each class read from a map file (the 13 SHREC'21 maps, the 5 extra complexes, free and bound, the 8 membrane
# proteins: 44 classes) is drawn 8 times as often as one made by code; the real structures' share of the draws
# goes from 44/595 (7 %) to 352/903 (39 %). Checkpoint by the monitor V (cosine); chosen on the protocol after
# (benchmarks/protocol.py). Design sets: benchmarks/design_sets.sh.
# The init checkpoint was removed from the tree in session 21 (git show 5fd5420:benchmarks/checkpoints/continue_session20.keras).
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont21 --init-model benchmarks/checkpoints/continue_session20.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 6 --patience 100 \
  --max-minutes 105 --workers 2 --seed 45 "$@"
