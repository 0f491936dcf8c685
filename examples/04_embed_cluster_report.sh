#!/usr/bin/env bash
# Step 4: embed the target picks with the trained f_theta, k-means for k = 2..12, scores, t-SNE, object lists.
# MODEL=shipped uses the pretrained model inside the package instead of the one trained in step 2.
set -euo pipefail
MODEL_ARGS=(--model example_run/model/model.keras)
[ "${MODEL:-}" = "shipped" ] && MODEL_ARGS=()
deepfinder-unsup embed --tomograms example_run/target/tomogram.mrc --objl example_run/target/objects.xml \
  "${MODEL_ARGS[@]}" --border pad --out example_run/embeddings.h5 --overwrite
deepfinder-unsup cluster example_run/embeddings.h5 --k 2:12 --evaluate --out example_run/clusters --overwrite
echo "open example_run/clusters/report.html"
