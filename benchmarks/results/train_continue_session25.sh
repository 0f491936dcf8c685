#!/bin/bash
# Session 25, CPU: session 24's continuation (--freeze-convs 4, runs/cont24) came out level with the shipped model
# after 38,400 more sub-tomograms; the lever that has moved the probe steadily is samples (sessions 19-21), so this
# run continues from its last epoch (runs/cont24/epoch_004.keras, 1,204,608 seen) with the same recipe: 595
# classes, CosFace s16 m0.1, binding 2, paired contrast 1 at T 0.1, --map-weight 8,
# benchmarks/configs/train_general_snr_particle2.json, bf16, no warm-up, cosine from 5e-5 over the run's 6 epochs,
# --freeze-convs 4, a fresh seed 49. Every epoch kept (--keep-epochs), chosen only by the paired rule of
# docs/model_card.md. Design sets: benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont25 --init-model runs/cont24/epoch_004.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 --map-weight 8 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 6 --patience 100 \
  --freeze-convs 4 --max-minutes 110 --workers 2 --seed 49 --keep-epochs "$@"
