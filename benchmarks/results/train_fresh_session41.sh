#!/bin/bash
# Session 41 (2-core AMD EPYC, AVX2 only, no GPU lent): session 40's recipe (every convolution trained, cosine
# peak 1e-4, from `general`) in epochs of 100 x 32 so that checkpoints land on a shared 2-core machine (session 40's
# 300-step epoch did not finish in 2 h beside other jobs); one simulation worker, and the run was started with
# TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 to leave a core for the adaptation measurements.
set -euo pipefail
STEPS=${STEPS:-100} WORKERS=${WORKERS:-1} OUT=${OUT:-runs/fresh41} MINUTES=${MINUTES:-130} EPOCHS=${EPOCHS:-4} \
  SEED=${SEED:-65} exec bash "$(dirname "$0")/train_fresh_session40.sh"
