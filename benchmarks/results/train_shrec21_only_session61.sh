#!/bin/bash
# Session 61 (2-core AMD EPYC, bf16 native, no GPU lent): a DIAGNOSTIC, not a candidate. Own SHREC'21's medium pairs
# are told apart by the pose-and-polarity oracle at 0.99 but by `general`'s features at 0.59-0.77 (1qvr/3cf3,
# 1bxn/1qvr, 1u6g/3d2f; benchmarks/results/shrec21_pairs_session61.py), though all are trained classes. Is that the
# network's capacity (a 40^3 box through DeepFinder's encoder, its front frozen, pooled) or the 595-class training
# that gives each of them about one sub-tomogram in a thousand? `general` continued on the 13 SHREC'21 maps and the
# negatives only (a fresh 14-class CosFace output; the contrastive loss on same-structure pairs, weight 3; no
# drawn-once structures, no binding output), the shipped microscopes, seed 93, a cosine over EPOCHS. If the pairs
# rise toward the oracle, the network can represent them and the broad training dilutes them; if they stay, the
# network cannot, at this box and resolution, whatever it is trained on.
# Result: 4 of 5 epochs in 55 minutes (38,400 samples, about 2,700 more of each structure; 14-way validation accuracy
# 0.27, 0.51, 0.53, 0.56). Own SHREC'21 (runs/val_shrec21_big) at epoch 4: V 0.583 -> 0.606, probe 0.594 -> 0.610;
# the medium pairs did not rise (1qvr/3cf3 by SNR third 0.59/0.77/0.75 -> 0.64/0.62/0.68; the oracle 0.99-1.00):
# drawn about 30 times as often as in the shipped recipe, the network still does not learn them at this scale.
# A diagnostic; not a candidate, no checkpoint kept (docs/training_history.md, session 61).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SHARED:-../shared}/structures/maps_10A
PRECISION=${PRECISION:-auto}
deepfinder-unsup train --structures "$S"/*.mrc --val runs/val_shrec21/dataset.h5 --loss cosface --margin 0.2 \
  --scale 16 --contrast-weight 3 --temperature 0.1 --lr-schedule cosine --learning-rate 5e-5 --precision "$PRECISION" \
  --batch-size 32 --steps-per-epoch 300 --epochs "${EPOCHS:-5}" --patience 100 --freeze-convs 4 --workers 2 \
  --keep-epochs --out "${OUT:-runs/shrec13}" --init-model "${INIT:-deepfinder_unsup/pretrained/f_theta_general.keras}" \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --max-minutes "${MINUTES:-55}" \
  --seed "${SEED:-93}" ${EXTRA_ARGS:-}
