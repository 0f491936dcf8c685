#!/bin/bash
# Session 35, CPU: batch reuse, as ONE change to the lineage's recipe (session 28's: margin 0.2, 595 classes, s 16,
# binding 2, paired contrast 1 at T 0.1, --map-weight 8, bf16, --freeze-convs 4, the full microscope ranges of
# train_general_snr_particle2.json; cosine from 5e-5 as in sessions 24-25), from the lineage's last epoch
# (benchmarks/checkpoints/continue_session34.keras, 1,598,208 seen): **--reuse 2**, each simulated batch trained on
# twice, the second time 4 steps later with every sub-tomogram turned by a random wedge-keeping 180-degree rotation.
# Why: with the front frozen the simulator is the bound on this CPU (session 24: 0.11 core-s a sample against the
# network's 0.10); a batch used twice costs 1.5 instead of 2 simulations+steps, about +35 % steps an hour, and
# session 4's GPU lease used each sample 6.4 times. Ending within MINUTES (default 120).
# Run as `bash benchmarks/results/train_reuse_session35.sh`: all 8 epochs in 108 minutes (570-1099 s each, the
# cores shared with CI, tests and paired bootstraps at times): 76,800 samples trained on, 38,912 simulated anew,
# 1,675,008 seen in all. Epoch 8 kept as benchmarks/checkpoints/continue_session35.keras; its init model is
# restorable with `git show 360f806:benchmarks/checkpoints/continue_session34.keras`.
set -euo pipefail
cd /work/main
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-120}
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 300 --epochs 8 --patience 100 --freeze-convs 4 \
  --workers 2 --keep-epochs --out runs/reuse35 --init-model benchmarks/checkpoints/continue_session34.keras \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 5e-5 --max-minutes "$MINUTES" \
  --reuse 2 --seed 60
