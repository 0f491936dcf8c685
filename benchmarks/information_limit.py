"""What limits the features on never-trained shapes: the microscope, the surroundings, or the shapes themselves?

The protocol's probe says the 32-D features of 200 never-trained procedural pseudo-molecules hold little
(about 0.28 linear-probe accuracy, 200 classes). This study removes the protocol microscope's degradations one
at a time, cumulatively, on the same structures and seed, and scores each set with the models and with
raw-voxel PCA(32):

    python benchmarks/information_limit.py --models general --classes 100 --out OUT.json

Sets (each from ``configs/protocol_microscope.json``; ``--classes`` procedural seeds from 1,000,000, the
protocol's own held-out seeds, ``--per-class`` each):
  1. protocol:      the protocol microscope as it is (neighbours, stray membranes, SNR 0.05-0.3, -40/+50 degrees)
  2. isolated:      1 without neighbours or stray membranes
  3. high_snr:      2 at 100 x the SNR (5-30)
  4. small_wedge:   3 with a -70/+70 degree dose-symmetric series in 2 degree steps, no alignment error

If the probe stays low on set 4, the features do not represent unseen shapes even when the data show them (a
representation limit: more or other training); if it rises step by step, the step that raises it most names
what the network must learn to see through. Labels score only; nothing here trains.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from protocol import HERE, kmeans_v, unit
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FIRST_SEED = 1_000_000  # the protocol's held-out procedural seeds
STEPS: dict[str, dict] = {
    "protocol": {},
    "isolated": {"n_neighbours": 0, "p_membrane": 0.0},
    "high_snr": {"snr": {"log": [5.0, 30.0]}},
    "small_wedge": {
        "tilt_min": -70,
        "tilt_max": 70,
        "tilt_step": 2,
        "tilt_scheme": "dose-symmetric",
        "tilt_error_deg": 0.0,
    },
}


def step_configs() -> dict[str, dict]:
    """The simulation parameters of each set: the protocol microscope with the steps so far applied."""
    base = json.loads((HERE / "configs" / "protocol_microscope.json").read_text())
    configs, current = {}, dict(base)
    for name, change in STEPS.items():
        current = {**current, **change}
        configs[name] = dict(current)
    return configs


def make_set(path: Path, params: dict, classes: int, per_class: int, seed: int) -> Path:
    """Simulate one set (no negatives: only the procedural classes), once."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import write_simulated_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    if path.exists():
        return path
    config = SimConfig.from_dict({**params, "negative_class": False})
    structures = load_structures([f"procedural:{classes}:{FIRST_SEED}"], config.voxel_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_simulated_dataset(path, structures, per_class, config, seed=seed, progress=False)


def scores(x: np.ndarray, truth: np.ndarray) -> dict:
    """k-means V at the true k (raw and unit features, the better) and the 5-fold linear-probe accuracy."""
    x = x.astype(np.float64)
    k = len(np.unique(truth))
    v = max(kmeans_v(x, truth, k)[0], kmeans_v(unit(x), truth, k)[0])
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {"v_true_k": round(v, 4), "linear_probe": round(float(cross_val_score(probe, x, truth, cv=5).mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["general"], help="model files or shipped names")
    parser.add_argument("--classes", type=int, default=100, help="procedural seeds from 1,000,000")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--data", default="benchmarks/data/information_limit", help="sets (made if absent)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly
    from deepfinder_unsup.extract import normalise
    from deepfinder_unsup.io.dataset import read_dataset

    import_tensorflow_quietly()
    from deepfinder_unsup.embed import Embedder

    embedders = {str(m): Embedder(m).fit() for m in args.models}
    results: dict = {"classes": args.classes, "per_class": args.per_class, "seed": args.seed, "sets": {}}
    for name, params in step_configs().items():
        t0 = time.time()
        path = make_set(
            Path(args.data) / f"{name}_{args.classes}x{args.per_class}_s{args.seed}.h5",
            params,
            args.classes,
            args.per_class,
            args.seed,
        )
        ds = read_dataset(path)
        flat = normalise(ds.subtomograms).reshape(len(ds.labels), -1)
        row = {
            "changes": STEPS[name],
            "pca32_raw_voxels": scores(PCA(32, random_state=0).fit_transform(flat), ds.labels),
        }
        for model, embedder in embedders.items():
            row[model] = scores(embedder.transform(ds.subtomograms), ds.labels)
        row["seconds"] = round(time.time() - t0, 1)
        results["sets"][name] = row
        print(name, row, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
