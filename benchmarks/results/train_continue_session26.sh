#!/bin/bash
# Session 26, CPU: sessions 22-25's continuations each came out level with the shipped model (40,000-50,000
# sub-tomograms a session is below what the paired rule sees); samples are the lever that moved the probe steadily
# (sessions 19-21), so this run accumulates them: session 25's last epoch (benchmarks/checkpoints/continue_session25.keras,
# 1,252,608 seen) with its recipe unchanged: 595 classes, CosFace s16 m0.1, binding 2, paired contrast 1 at T 0.1,
# --map-weight 8, benchmarks/configs/train_general_snr_particle2.json, bf16, no warm-up, cosine from 5e-5 over the
# run's 8 epochs, --freeze-convs 4, a fresh seed 50. Every epoch kept (--keep-epochs), chosen only by the paired
# rule of docs/model_card.md. Design sets: benchmarks/design_sets.sh. The init model left the tree when this run's
# last epoch replaced it (benchmarks/checkpoints/continue_session26.keras): `git show
# a35d4f9:benchmarks/checkpoints/continue_session25.keras > FILE` restores it.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont26 --init-model benchmarks/checkpoints/continue_session25.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 8 --patience 100 \
  --freeze-convs 4 --max-minutes 105 --workers 2 --seed 50 --keep-epochs "$@"
