"""Session 47: what the FSC's null alignments cost. One cluster of 100 simulated 1bxn sub-tomograms averaged with
``null_draws`` 0 and 4, alternating, twice (`python benchmarks/results/average_null_cost_session47.py`, run from the
repository root with ../shared beside it; output: average_null_cost_session47.log)."""

import json
import time
from pathlib import Path

from deepfinder_unsup.average import subtomogram_average
from deepfinder_unsup.simulate.config import fixed_config
from deepfinder_unsup.simulate.dataset import simulate_dataset
from deepfinder_unsup.simulate.structures import load_structures

structs = load_structures([str(Path("../shared/structures/maps_10A/1bxn.mrc"))], 10.0)
vols, _, _ = simulate_dataset(structs, 100, fixed_config(snr=0.2, negative_class=False), seed=5, progress=False)
out: dict = {}
for _repeat in range(2):
    for draws in (0, 4):
        t0 = time.time()
        result = subtomogram_average(vols, 10.0, null_draws=draws)
        seconds = time.time() - t0
        out.setdefault(str(draws), []).append(round(seconds, 1))
        print(draws, round(seconds, 1), result.resolution, flush=True)
print(json.dumps(out))
