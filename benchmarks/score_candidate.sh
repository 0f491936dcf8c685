#!/bin/bash
# The ship rule's three paired bootstraps for one candidate checkpoint against a base model (docs/training_history.md):
#   the protocol's 207 never-trained structures (50 resamples), its real held-out six (100), own SHREC'21 (runs/val_shrec21_big, 100).
# A candidate ships when the 207's 90 % interval lies wholly above 0 and neither other interval wholly below.
#   bash benchmarks/score_candidate.sh CANDIDATE.keras TAG [BASE]      # BASE: a model file or shipped name (general)
# Writes benchmarks/results/paired_bootstrap_TAG{,_real,_shrec21}.json; features cached in runs/cache.
# Needs benchmarks/data/protocol.h5 (protocol.make_protocol_data) and runs/val_shrec21_big (benchmarks/design_sets.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CANDIDATE=$1 TAG=$2 BASE=${3:-general}
R=benchmarks/results/paired_bootstrap_$TAG
run() { python benchmarks/paired_bootstrap.py --models "$BASE" "$CANDIDATE" --cache runs/cache "$@"; }
run --data benchmarks/data/protocol.h5 --resamples 50 --out "$R.json"
run --data benchmarks/data/protocol.h5 --classes 2uv8 6utj 6pxm 7n4y 5tqq negative --resamples 100 --out "${R}_real.json"
run --data runs/val_shrec21_big/dataset.h5 --resamples 100 --out "${R}_shrec21.json"
