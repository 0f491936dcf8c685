#!/bin/bash
# The design sets that training runs and the adaptation studies choose on (labelled, simulated, kept under runs/,
# which git ignores): each is deterministic for its seed, so a fresh machine remakes the same files,
# about 2,600 sub-tomograms in all (not timed on an idle machine). The protocols' own test sets are made by benchmarks/protocol.py and adaptation_protocol.py.
#   runs/val_shrec21: the 13 SHREC'21 maps + negatives x 40, training microscope (own validation: `train --val`,
#                     `protocol.py --shrec21`; the recipe docs/model_card.md gives since session 3)
#   runs/monitor:     30 procedural seeds from 2,000,000 + the protocol's held-out real structures, another
#                     microscope (`train --monitor`: checkpoint selection)
#   runs/rare:        the held-out real structures + negatives at the protocol microscope (rare-class rules)
#   runs/val_shrec21_big: the own SHREC'21 recipe with 120 per class, another seed (1,680 picks; session 21: the
#                     paired bootstrap of the ship rule tells differences of about 0.015 on it, 0.025 on val_shrec21)
#   runs/adapt_design: 6 procedural seeds from 3,000,000 + negatives x 90 at a microscope outside the training ranges
#                     and unlike the adaptation protocol's four domains (4.5 A pixels, -35/+60, B 1500-2000, 1/k^1.5
#                     noise, CTF multiplied, SNR 0.02-0.08; session 32): `adapt` studies, where the unadapted
#                     features leave room (runs/rare sits at 0.915 before adapting)
# Before session 11 the monitor and rare sets' per-class counts and seeds were not recorded; these are the
# recipes since.
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared/structures
E=$S/maps_10A_extra
HELD_OUT=("$E/2uv8.mrc" "$E/6utj.mrc" "$E/6pxm.mrc" "$E/7n4y.mrc")
[ -e runs/val_shrec21/dataset.h5 ] || deepfinder-unsup simulate --structures $S/maps_10A --per-class 40 \
  --out runs/val_shrec21 --seed 12 --quiet
[ -e runs/val_shrec21_big/dataset.h5 ] || deepfinder-unsup simulate --structures $S/maps_10A --per-class 120 \
  --out runs/val_shrec21_big --seed 13 --quiet
[ -e runs/monitor/dataset.h5 ] || deepfinder-unsup simulate --structures procedural:30:2000000 "${HELD_OUT[@]}" \
  "$E/7n4y.mrc@membrane" "membrane:$S/membrane_10A/5tqq.mrc" --config benchmarks/configs/monitor_microscope.json \
  --per-class 40 --out runs/monitor --seed 5 --quiet
[ -e runs/rare/dataset.h5 ] || deepfinder-unsup simulate --structures "${HELD_OUT[@]}" \
  "membrane:$S/membrane_10A/5tqq.mrc" --config benchmarks/configs/protocol_microscope.json --per-class 100 \
  --out runs/rare --seed 6 --quiet
[ -e runs/adapt_design/dataset.h5 ] || deepfinder-unsup simulate --structures procedural:6:3000000 \
  --config benchmarks/configs/adapt_design_microscope.json --per-class 90 --out runs/adapt_design --seed 32 --quiet
ls -l runs/val_shrec21/dataset.h5 runs/val_shrec21_big/dataset.h5 runs/monitor/dataset.h5 runs/rare/dataset.h5 \
  runs/adapt_design/dataset.h5
