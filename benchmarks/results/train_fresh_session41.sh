#!/bin/bash
# Session 41 (2-core AMD EPYC, AVX2 only, no GPU lent): session 40's recipe (every convolution trained, cosine
# peak 1e-4, from `general`) in epochs of 100 x 32 so that checkpoints land on a shared 2-core machine (session 40's
# 300-step epoch did not finish in 2 h beside other jobs); one simulation worker and TF_NUM_INTRAOP_THREADS=1 leave a
# core for the adaptation measurements.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-130}
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine \
  --precision auto --batch-size 32 --steps-per-epoch "${STEPS:-100}" --epochs "${EPOCHS:-4}" --patience 100 --freeze-convs 0 \
  --workers "${WORKERS:-1}" --keep-epochs --out ${OUT:-runs/fresh41} --init-model deepfinder_unsup/pretrained/f_theta_general.keras \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 1e-4 --max-minutes "$MINUTES" \
  --reuse 2 --fresh-structures 0.5 --seed ${SEED:-65} ${EXTRA_ARGS:-}
