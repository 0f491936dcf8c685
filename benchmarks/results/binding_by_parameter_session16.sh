#!/bin/bash
# Session 16: which of the protocol microscope's settings hides the membrane from the shipped model? The
# protocol's microscope (benchmarks/configs/protocol_microscope.json) with ONE setting moved back towards the
# training ranges, 7n4y free and on a membrane, 60 + 60, seed 11, bound copies split by whether the tilt series
# samples their membrane (binding_readout.py --by-visibility). Results: binding_by_parameter_session16.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-runs/s16}
mkdir -p "$dir"
python - "$dir" <<'PY'
import json, sys
base = json.load(open("benchmarks/configs/protocol_microscope.json"))
variants = {
    "protocol": {},
    "defocus3": {"defocus_um": [2.5, 3.5]},
    "dosesym": {"tilt_scheme": "dose-symmetric", "tilt_step": 3},
    "tilt60": {"tilt_min": -60, "tilt_max": 60},
    "white": {"noise_colour": 0.0},
    "vox10": {"sim_voxel_size": 10.0},
    "bfac": {"bfactor": [100, 300]},
    "snr_particle": {"snr_reference": "particle"},
}
for name, change in variants.items():
    json.dump({**base, **change}, open(f"{sys.argv[1]}/cfg_{name}.json", "w"), indent=1)
PY
for V in protocol defocus3 dosesym tilt60 white vox10 bfac snr_particle; do
  python benchmarks/binding_readout.py --models general --simulate "$dir/cfg_$V.json" \
    --structure ../shared/structures/maps_10A_extra/7n4y.mrc --per-class 60 --seed 11 --by-visibility \
    --out "$dir/vis_$V.json"
done
