#!/bin/bash
# Session 6, CPU (A/B against train_continue_session6.sh): the same continuation with --view-weight 1
# (pairs of wedge-symmetric views, docs/model_card.md "Session 6"), on the same 595 classes with the
# binding-state loss (--binding-weight 1: free / membrane surface / transmembrane as shared directions);
# fresh sub-tomograms every step, constant rate 5e-5; checkpoint by the held-out monitor V (cosine).
cd /work/main
S=../shared/structures
E=$S/maps_10A_extra
M=$S/membrane_10A
exec deepfinder-unsup train \
  --structures procedural:400:0 procedural:150:0@membrane $S/maps_10A $S/maps_10A@membrane \
    $E/1f4a.mrc $E/3ipm.mrc $E/4v7r.mrc $E/6qzp.mrc $E/8tux.mrc \
    $E/1f4a.mrc@membrane $E/3ipm.mrc@membrane $E/4v7r.mrc@membrane $E/6qzp.mrc@membrane $E/8tux.mrc@membrane \
    membrane:$M/4pe5.mrc membrane:$M/5gjv.mrc membrane:$M/5ide.mrc membrane:$M/5kxi.mrc \
    membrane:$M/5tj6.mrc membrane:$M/5vai.mrc membrane:$M/5wek.mrc membrane:$M/6rd4.mrc \
  --val runs/val_shrec21/dataset.h5 --monitor runs/monitor/dataset.h5 --select-by monitor_v_measure_cos \
  --out runs/view6 --init-model general --binding-weight 1 --view-weight 1 --loss cosface --margin 0.1 --scale 16 \
  --sim-config benchmarks/configs/train_general.json --lr-schedule constant --learning-rate 5e-5 \
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch 150 --epochs 60 --patience 100 \
  --max-minutes 80 --workers 2 --seed 10 "$@"
