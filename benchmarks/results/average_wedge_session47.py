"""Session 47: does the wedge `average` assumes matter? 60 sub-tomograms each of 1bxn, 3cf3 and 5mrc simulated at
+-45 degrees (fixed_config otherwise: 10 Å, 3 µm, SNR 0.2), averaged assuming +-60 (the default), the true +-45,
and the range `simulate.like` estimates from the particles; correlation of each average with the true map
(`python benchmarks/results/average_wedge_session47.py`, from the repository root with ../shared beside it;
output: average_wedge_session47.log)."""

import sys
import time

import numpy as np

sys.path.insert(0, "benchmarks")
from averages import correlation_with  # noqa: E402

from deepfinder_unsup.average import subtomogram_average  # noqa: E402
from deepfinder_unsup.simulate.config import fixed_config  # noqa: E402
from deepfinder_unsup.simulate.dataset import simulate_dataset  # noqa: E402
from deepfinder_unsup.simulate.like import estimate_tilt_range, mean_power_spectrum  # noqa: E402
from deepfinder_unsup.simulate.structures import load_structures  # noqa: E402
from deepfinder_unsup.volume import crop_or_pad  # noqa: E402

names = ["1bxn", "3cf3", "5mrc"]
structs = load_structures([f"../shared/structures/maps_10A/{n}.mrc" for n in names], 10.0)
cfg = fixed_config(snr=0.2, negative_class=False, tilt_min=-45, tilt_max=45)
vols, objl, classes = simulate_dataset(structs, 60, cfg, seed=5, progress=False)
labels = np.array([o["label"] for o in objl])
estimate = estimate_tilt_range(mean_power_spectrum(vols))
print("estimated", estimate, flush=True)
for label, struct in enumerate(structs, 1):
    members = vols[labels == label]
    true_map = -crop_or_pad(struct.density.astype(np.float32), vols.shape[-1])
    for name, tilt_range in (("assumed +-60", (-60.0, 60.0)), ("true +-45", (-45.0, 45.0)), ("estimated", estimate)):
        t0 = time.time()
        result = subtomogram_average(members, 10.0, tilt_range=tilt_range)
        cc = round(correlation_with(result.average, true_map), 3)
        row = {"structure": classes[label], "wedge": name, "cc": cc, "res": round(result.resolution, 1)}
        print(row, round(time.time() - t0), flush=True)
