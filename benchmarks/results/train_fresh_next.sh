#!/bin/bash
# Prepared in session 35, for the next CPU session: structures drawn once, as ONE change to session 35's run
# (benchmarks/results/train_reuse_session35.sh: the lineage's recipe with --reuse 2), from its last epoch
# (benchmarks/checkpoints/continue_session35.keras): **--fresh-structures 0.5**, half of each batch's 16 pairs
# two sub-tomograms of a procedural structure never drawn before (seeds 10,000-999,999), learnt from by the
# paired contrastive loss alone (weight 0 in the class and binding losses). Why: the issue asks for "a fresh
# draw of classes all the time"; growing the CosFace class list (sessions 12 and 23, 1,895 classes) bought
# nothing at 15 draws a class, but the contrastive loss needs no class direction, so every pair can be a
# structure the network has never seen, which is what the protocol scores. Ending within MINUTES (default 130).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/configs/structures_595.sh
MINUTES=${MINUTES:-130}
PRECISION=${PRECISION:-auto}  # bf16 where native (AVX-512 BF16, AMX), float32 elsewhere (session 36: AVX2 only)
deepfinder-unsup train --structures "${STRUCTURES_595[@]}" --val runs/val_shrec21/dataset.h5 \
  --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos --binding-weight 2 --contrast-weight 1 \
  --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 --lr-schedule cosine \
  --precision "$PRECISION" --batch-size 32 --steps-per-epoch 300 --epochs "${EPOCHS:-9}" --patience 100 --freeze-convs 4 \
  --workers 2 --keep-epochs --out ${OUT:-runs/fresh36} --init-model ${INIT:-benchmarks/checkpoints/continue_session35.keras} \
  --sim-config ${SIM_CONFIG:-benchmarks/configs/train_general_snr_particle2.json} --learning-rate 5e-5 --max-minutes "$MINUTES" \
  --reuse 2 --fresh-structures 0.5 --seed ${SEED:-61} ${EXTRA_ARGS:-}
