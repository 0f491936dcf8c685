#!/usr/bin/env bash
# The measurements of session 3 (run after the training stopped, one after the other, on the idle 2 cores).
set -uo pipefail
cd "$(dirname "$0")/../.."
R=benchmarks/results
python benchmarks/protocol.py --models runs/general2/model.keras --shrec21 runs/val_shrec21/dataset.h5 --no-pca \
  --out $R/protocol_general_session3.json > $R/protocol_general_session3.log 2>&1
python benchmarks/averages.py --per-class 100 --out $R/averages.json > $R/averages.log 2>&1
python benchmarks/scale.py dask --picks 1200 --tomograms 4 --work /tmp/scale > $R/scale_dask.log 2>&1
python benchmarks/scale.py cluster --particles 200000 --work /tmp/scale > $R/scale_cluster.log 2>&1
python benchmarks/protocol.py --models shrec21 --precision float32 bfloat16 int8 --no-pca \
  --out $R/protocol_precision.json > $R/protocol_precision.log 2>&1
python benchmarks/embed_speed.py --batches 32 64 --int8 > $R/embed_speed_session3.log 2>&1
echo done > $R/session3_eval.done
