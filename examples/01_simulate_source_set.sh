#!/usr/bin/env bash
# Step 1 of the paper's pipeline: a labelled source set X_source of simulated sub-tomograms.
# Uses the SHREC'21 maps beside the project (../shared) if present, else the built-in shapes.
set -euo pipefail
MAPS=../shared/structures/maps_10A
[ -d "$MAPS" ] || MAPS=builtin
deepfinder-unsup simulate --structures "$MAPS" --per-class ${PER_CLASS:-100} --out example_run/source_train --seed 1 --overwrite
deepfinder-unsup simulate --structures "$MAPS" --per-class ${PER_CLASS_VAL:-20} --out example_run/source_val --seed 2 --overwrite
