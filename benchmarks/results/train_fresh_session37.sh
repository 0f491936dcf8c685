#!/bin/bash
# Session 37's run (2-core AMD EPYC with AVX2 only again, so float32): session 36's recipe (structures drawn once,
# --fresh-structures 0.5) continued from its epoch 2 (shipped as `general` in this session, the same file as the run used) with ONE change
# to the microscopes: the defocus drawn from 1-8 µm (was 1-6; the issue's range; session 16 found the defocus beyond
# 6 µm is what most hides a membrane), benchmarks/configs/train_general_defocus8.json. New seed, a cosine over
# 4 epochs, ending within 105 minutes; scored afterwards against `general`.
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=deepfinder_unsup/pretrained/f_theta_general.keras SEED=62 EPOCHS=4 MINUTES=105 PRECISION=auto OUT=runs/fresh37 \
  SIM_CONFIG=benchmarks/configs/train_general_defocus8.json bash benchmarks/results/train_fresh_next.sh
