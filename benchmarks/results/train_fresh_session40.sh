#!/bin/bash
# Session 40 (2-core AMD EPYC, AVX2 only, no GPU lent): the next lease's one change on the CPU. From `general`, the
# shipped recipe (benchmarks/results/train_fresh_next.sh, drawn-once pairs 0.5) with EVERY convolution trained
# (--freeze-convs 0 instead of 4) and a 2x higher cosine peak (1e-4 instead of 5e-5): sessions 36-39 trained the
# last four convolutions only, and session 8's layer probe found that the encoder, not the head, lacks the
# information. One epoch of 300 x 32 takes about an hour on AVX2 float32; ending within MINUTES.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-100}
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine \
  --precision auto --batch-size 32 --steps-per-epoch "${STEPS:-300}" --epochs "${EPOCHS:-2}" --patience 100 --freeze-convs 0 \
  --workers "${WORKERS:-2}" --keep-epochs --out ${OUT:-runs/fresh40} --init-model deepfinder_unsup/pretrained/f_theta_general.keras \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --learning-rate 1e-4 --max-minutes "$MINUTES" \
  --reuse 2 --fresh-structures 0.5 --seed ${SEED:-64} ${EXTRA_ARGS:-}
