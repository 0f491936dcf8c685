#!/bin/bash
# The next GPU lease (written in session 25, not run yet: no device has been lent since session 4): the shipped
# recipe of the CPU sessions on the accelerator. Sessions 5-24 changed it after session 4's lease: the head
# (flatten_conv since session 13; the script now takes the init model's head, it built "flatten" before), the
# binding-state loss (weight 2), the paired contrastive loss (weight 1, T 0.1), the particle's SNR in two boxes of
# three (train_general_snr_particle2.json) and the classes from map files drawn 8 times as often (--map-weight 8).
# From the shipped model (1,166,208 seen), its 595 classes (benchmarks/configs/structures_595.sh; the maps travel
# in .accel/structures), Adam peaking at 1e-4 (half session 4's: a continuation, not a new head) after 300
# warm-up steps, cosine to 2 % over the budget. Usage, on the device (see benchmarks/train_accelerator.py):
#   STRUCTURES=.accel/structures OMP_NUM_THREADS=1 bash benchmarks/results/train_accelerator_next.sh $OUT \
#       --minutes 8.3 --workers 14
# then here: python benchmarks/train_accelerator.py finalise FILES/final.keras --check FILES/check.npz \
#       --val runs/val_shrec21/dataset.h5 --out runs/gpu/model.keras, and the ship rule of docs/model_card.md.
set -e
OUT_DIR=$1; shift
source benchmarks/configs/structures_595.sh
exec python3 benchmarks/train_accelerator.py train --structures "${STRUCTURES_595[@]}" \
  --sim-config benchmarks/configs/train_general_snr_particle2.json --map-weight 8 \
  --init-model deepfinder_unsup/pretrained/f_theta_general.keras \
  --binding-weight 2 --contrast-weight 1 --temperature 0.1 --scale 16 --margin 0.1 \
  --batch-size 128 --learning-rate 1e-4 --warmup 300 --replay 8 --seed 25 \
  --out "$OUT_DIR" "$@"
