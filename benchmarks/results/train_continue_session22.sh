#!/bin/bash
# Session 22, CPU: session 21's `--map-weight 8` raised the real structures' scores (own SHREC'21 0.542 -> 0.578,
# real held-out 0.890 -> 0.907) at no cost on the never-trained shapes. Push the same lever one step further:
# continue session 21's shipped epoch (benchmarks/checkpoints/continue_session21.keras, 1,166,208 seen) with the
# same recipe (CosFace s16 m0.1, binding weight 2, paired contrast 1 at T 0.1, benchmarks/configs/
# train_general_snr_particle2.json, bf16, no warm-up, cosine from 5e-5), changing one thing: `--map-weight 16`,
# so the 44 classes read from map files are drawn 16 times as often as one made by code (their share of the
# draws 352/903 = 39 % -> 704/1255 = 56 %). Checkpoint by the monitor V (cosine); shipped only by the paired
# rule of docs/model_card.md (benchmarks/protocol.py, benchmarks/paired_bootstrap.py). Design sets:
# benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont22 --init-model benchmarks/checkpoints/continue_session21.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 --map-weight 16 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 6 --patience 100 \
  --max-minutes 100 --workers 2 --seed 46 "$@"
