#!/bin/bash
# Session 39's GPU lease (the first since session 4): the shipped CPU recipe (benchmarks/results/train_fresh_next.sh,
# session 36's: CosFace margin 0.2, binding weight 2, paired contrastive loss weight 1 with T 0.1, half of the
# pairs of procedural structures drawn once (--fresh-structures 0.5), the encoder's first 4 convolutions frozen,
# classes from map files drawn 8 times as often, the particle's SNR in two boxes of three) on the accelerator,
# from the shipped model (1,694,208 seen) on its 595 classes: one change, the scale (a CPU session simulates
# ~20,000 sub-tomograms; session 4's lease 71,712 and trained on 455,808). Adam peaking at 1e-4 (batch 128, four
# times the CPU's 32 at 5e-5) after 300 warm-up steps, cosine to 2 % over the budget. Usage, on the device:
#   STRUCTURES=.accel/structures OMP_NUM_THREADS=1 bash benchmarks/results/train_accelerator_session39.sh $OUT \
#       --minutes 8 --workers 14
# then here: python benchmarks/train_accelerator.py finalise FILES/final.keras --check FILES/check.npz \
#       --val runs/val_shrec21/dataset.h5 --out runs/gpu/model.keras, and the ship rule of docs/model_card.md.
set -e
OUT_DIR=$1; shift
source benchmarks/configs/structures_595.sh
exec python3 benchmarks/train_accelerator.py train --structures "${STRUCTURES_595[@]}" \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --map-weight 8 \
  --init-model deepfinder_unsup/pretrained/f_theta_general.keras \
  --binding-weight 2 --contrast-weight 1 --temperature 0.1 --scale 16 --margin 0.2 \
  --fresh-structures 0.5 --freeze-convs 4 \
  --batch-size 128 --learning-rate 1e-4 --warmup 300 --replay 8 --min-pool 1024 --seed 39 \
  --out "$OUT_DIR" "$@"
