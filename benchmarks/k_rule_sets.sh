#!/bin/bash
# Three cleaner held-out sets for the label-free k (session 55): higher SNR than the protocol, so that the
# picks' neighbour graph can fall apart into groups, as on the demo (6 components, 6 classes). Structures and
# microscopes training never used: the five held-out shared ones (other microscope), procedural seeds from
# 4,000,000 (protocol microscope) and 5,000,000 (monitor microscope); labels only to score.
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared/structures
E=$S/maps_10A_extra
[ -e runs/kclean1/dataset.h5 ] || deepfinder-unsup simulate --structures "$E/2uv8.mrc" "$E/6utj.mrc" "$E/6pxm.mrc" \
  "$E/7n4y.mrc" "membrane:$S/membrane_10A/5tqq.mrc" --config benchmarks/configs/k_rule_other_clean.json \
  --per-class 50 --out runs/kclean1 --seed 551 --quiet
[ -e runs/kclean2/dataset.h5 ] || deepfinder-unsup simulate --structures procedural:8:4000000 \
  --config benchmarks/configs/k_rule_protocol_clean.json --per-class 40 --out runs/kclean2 --seed 552 --quiet
[ -e runs/kclean3/dataset.h5 ] || deepfinder-unsup simulate --structures procedural:12:5000000 \
  --config benchmarks/configs/k_rule_monitor_clean.json --per-class 30 --out runs/kclean3 --seed 553 --quiet
ls -l runs/kclean1/dataset.h5 runs/kclean2/dataset.h5 runs/kclean3/dataset.h5
