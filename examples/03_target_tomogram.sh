#!/usr/bin/env bash
# Step 3: a target tomogram with structures the network never saw (built-in shapes), picked (the object list).
set -euo pipefail
deepfinder-unsup simulate-tomogram --structures builtin:ring builtin:barrel builtin:dumbbell builtin:helix_right \
  builtin:corner_right builtin:globule --shape 96 320 320 --particles 240 --out example_run/target --seed 5 --overwrite
