import numpy as np, time, json
from pathlib import Path
from deepfinder_unsup.simulate.config import fixed_config
from deepfinder_unsup.simulate.dataset import simulate_dataset
from deepfinder_unsup.simulate.structures import load_structures
from deepfinder_unsup.average import subtomogram_average
structs = load_structures([str(Path("../shared/structures/maps_10A/1bxn.mrc"))], 10.0)
vols, objl, names = simulate_dataset(structs, 100, fixed_config(snr=0.2, negative_class=False), seed=5, progress=False)
out = {}
for rep in range(2):
    for draws in (0, 4):
        t = time.time(); r = subtomogram_average(vols, 10.0, null_draws=draws); dt = time.time() - t
        out.setdefault(str(draws), []).append(round(dt, 1))
        print(draws, round(dt, 1), r.resolution, flush=True)
print(json.dumps(out))
