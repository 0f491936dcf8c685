#!/usr/bin/env bash
# Step 2: train f_theta (DeepFinder encoder + head) as a classifier of the source set.
# MINUTES bounds the wall time (the shipped model trained for about an hour, see docs/model_card.md).
set -euo pipefail
W=../shared/deepfinder/weights/net_weights_FINAL.h5
INIT=()
[ -f "$W" ] && INIT=(--deepfinder-weights "$W")
deepfinder-unsup train --train example_run/source_train/dataset.h5 --val example_run/source_val/dataset.h5 \
  --out example_run/model "${INIT[@]}" --epochs 50 --steps-per-epoch 20 --max-minutes ${MINUTES:-5} --overwrite
