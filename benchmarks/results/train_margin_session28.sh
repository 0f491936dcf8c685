#!/bin/bash
# Session 28, CPU: session 27's wider CosFace margin (0.2) continued, and this time annealed: sessions 22-27 all
# stopped their cosine schedules early (at about 0.7 of the peak rate), so no run has yet ended at a low learning
# rate. Session 27's last epoch (benchmarks/checkpoints/continue_session27.keras, 1,319,808 seen), its recipe
# otherwise (595 classes, CosFace s16 margin 0.2, binding 2, paired contrast 1 at T 0.1, --map-weight 8,
# benchmarks/configs/train_general_snr_particle2.json, bf16, --freeze-convs 4), cosine from 4e-5 to 1 % of it over 5
# epochs of 300 x 32, a fresh seed 52. Every epoch kept (--keep-epochs), chosen only by the paired rule of
# docs/model_card.md. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/margin28 --init-model benchmarks/checkpoints/continue_session27.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 4e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 5 --patience 100 \
  --freeze-convs 4 --max-minutes 100 --workers 2 --seed 52 --keep-epochs "$@"
