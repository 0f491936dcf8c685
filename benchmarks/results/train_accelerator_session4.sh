#!/bin/bash
# Session 4: f_theta general trained on the lent GPU machine (H200 + 16 cores, no TensorFlow: Keras on JAX).
# The maps travel in .accel/structures (a copy of ../shared/structures/{maps_10A,maps_10A_extra,membrane_10A});
# held out as in the protocol: 2uv8, 6utj, 6pxm, 7n4y, 5tqq and procedural seeds >= 1,000,000.
# Usage: train_accelerator_session4.sh OUT_DIR [extra train options]
# It starts from the shipped general model: since session 4 that is this run's own result (same 595 classes,
# so the output layer transfers too); give --seed a new value for new sub-tomograms.
set -e
S=${STRUCTURES:-.accel/structures}
OUT_DIR=$1; shift
E=$S/maps_10A_extra
M=$S/membrane_10A
exec python3 benchmarks/train_accelerator.py train \
  --structures procedural:400:0 procedural:150:0@membrane $S/maps_10A $S/maps_10A@membrane \
    $E/1f4a.mrc $E/3ipm.mrc $E/4v7r.mrc $E/6qzp.mrc $E/8tux.mrc \
    $E/1f4a.mrc@membrane $E/3ipm.mrc@membrane $E/4v7r.mrc@membrane $E/6qzp.mrc@membrane $E/8tux.mrc@membrane \
    membrane:$M/4pe5.mrc membrane:$M/5gjv.mrc membrane:$M/5ide.mrc membrane:$M/5kxi.mrc \
    membrane:$M/5tj6.mrc membrane:$M/5vai.mrc membrane:$M/5wek.mrc membrane:$M/6rd4.mrc \
  --sim-config benchmarks/configs/train_general.json \
  --init-model deepfinder_unsup/pretrained/f_theta_general.keras \
  --batch-size 128 --learning-rate 2e-4 --warmup 300 --scale 16 --margin 0.1 --replay 8 \
  --out "$OUT_DIR" "$@"
