#!/bin/bash
# Session 20, CPU: continue session 19's last epoch (benchmarks/checkpoints/continue_session19.keras, 1,070,208
# sub-tomograms seen) the way session 19 did (no warm-up; its monitor did not dip): the rate starts at 5e-5 and
# falls by cosine over 7 epochs of 300 x 32. Same recipe otherwise (CosFace s16 m0.1, binding weight 2, paired
# contrast 1 at T 0.1, benchmarks/configs/train_general_snr_particle2.json, bf16), a fresh seed (44). Checkpoint
# by the monitor V (cosine); chosen on the protocol after (benchmarks/protocol.py). Design sets:
# benchmarks/design_sets.sh.
cd /work/main
source benchmarks/configs/structures_595.sh
exec deepfinder-unsup train --structures "${STRUCTURES_595[@]}" \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/cont20 --init-model benchmarks/checkpoints/continue_session19.keras --binding-weight 2 \
  --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --lr-schedule cosine --learning-rate 5e-5 \
  --warmup-steps 0 --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 7 --patience 100 \
  --max-minutes 110 --workers 2 --seed 44 "$@"
