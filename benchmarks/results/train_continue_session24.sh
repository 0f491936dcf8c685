#!/bin/bash
# Session 24, CPU: the data levers (map weight, session 22; class list, session 23) came out level; the one lever
# that has moved the probe steadily is more samples (sessions 19-21: 0.340 -> 0.370), and the CPU is what limits
# them. New: `--freeze-convs 4` keeps the encoder's first four convolutions (the two at the full 40^3 box and the
# two at 20^3, most of the arithmetic) as they are after 1,166,208 samples, for 2.65x the steps per hour measured
# on the network alone (docs/model_card.md, session 24). One change against session 21's shipped recipe (595
# classes, CosFace s16 m0.1, binding 2, paired contrast 1 at T 0.1, --map-weight 8,
# benchmarks/configs/train_general_snr_particle2.json, bf16, no warm-up, cosine from 5e-5), from the shipped
# weights (benchmarks/checkpoints/continue_session21.keras), a fresh seed 48. Every epoch kept (--keep-epochs),
# chosen only by the paired rule of docs/model_card.md. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont24 --init-model benchmarks/checkpoints/continue_session21.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 9 --patience 100 \
  --freeze-convs 4 --max-minutes 112 --workers 2 --seed 48 --keep-epochs "$@"
