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
  5. sharp:         4 at 1-1.5 um defocus, B-factor 0-50, white noise (the protocol: 6.5-7.5 um, 600-900)

If the probe stays low on set 5, the features do not represent unseen shapes even when the data show them (a
representation limit: more or other training); if it rises step by step, the step that raises it most names
what the network must learn to see through. Labels score only; nothing here trains.

``--domains benchmarks/data/domains``: the same true-pose ceiling on the adaptation protocol's four domains.
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
    "sharp": {"defocus_um": [1.0, 1.5], "bfactor": [0.0, 50.0], "noise_colour": 0.0},
}


def step_configs() -> dict[str, dict]:
    """The simulation parameters of each set: the protocol microscope with the steps so far applied."""
    base = json.loads((HERE / "configs" / "protocol_microscope.json").read_text())
    configs, current = {}, dict(base)
    for name, change in STEPS.items():
        current = {**current, **change}
        configs[name] = dict(current)
    return configs


def make_set(path: Path, params: dict, classes: int, first_seed: int, per_class: int, seed: int) -> Path:
    """Simulate one set (no negatives: only the procedural classes), once."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import write_simulated_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    if path.exists():
        return path
    config = SimConfig.from_dict({**params, "negative_class": False})
    structures = load_structures([f"procedural:{classes}:{first_seed}"], config.voxel_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_simulated_dataset(path, structures, per_class, config, seed=seed, progress=False)


def scores(x: np.ndarray, truth: np.ndarray) -> dict:
    """k-means V at the true k (raw and unit features, the better) and the 5-fold linear-probe accuracy."""
    x = x.astype(np.float64)
    k = len(np.unique(truth))
    v = max(kmeans_v(x, truth, k)[0], kmeans_v(unit(x), truth, k)[0])
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {"v_true_k": round(v, 4), "linear_probe": round(float(cross_val_score(probe, x, truth, cv=5).mean()), 4)}


def aligned_to_template_frame(ds) -> np.ndarray:
    """Each sub-tomogram moved and rotated back by its TRUE centre and pose (from the simulation's object list):
    what a pose oracle would see. Flattened, normalised rows."""
    from deepfinder_unsup.extract import normalise
    from deepfinder_unsup.geometry import rotate_volume, rotation_from_deepfinder_angles
    from deepfinder_unsup.volume import box_centre

    out = np.empty((len(ds.objl), ds.subtomograms[0].size), np.float32)
    for i, (vol, obj) in enumerate(zip(ds.subtomograms, ds.objl)):
        c = np.array([box_centre(n) for n in vol.shape[::-1]], float)  # x, y, z
        centred = rotate_volume(
            vol, rotation_from_deepfinder_angles(0, 0, 0), shift_xyz=c - [obj["x"], obj["y"], obj["z"]]
        )
        rot = rotation_from_deepfinder_angles(obj["phi"], obj["the"], obj["psi"])
        out[i] = rotate_volume(centred, rot.inv()).ravel()
    return normalise(out.reshape(ds.subtomograms.shape)).reshape(len(out), -1)


def nearest_mean_accuracy(x: np.ndarray, truth: np.ndarray, folds: int = 5) -> float:
    """5-fold accuracy of assigning each row to the class mean (of the other folds) it correlates best with:
    template matching with averaged templates."""
    from sklearn.model_selection import StratifiedKFold

    x = unit(x - x.mean(axis=1, keepdims=True))
    hits = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, truth):
        classes = np.unique(truth[train])
        means = unit(np.stack([x[train][truth[train] == c].mean(axis=0) for c in classes]))
        hits += int((classes[np.argmax(x[test] @ means.T, axis=1)] == truth[test]).sum())
    return hits / len(truth)


def pose_oracle_scores(ds) -> dict:
    """The ceiling a pose-aware method could reach on the same sub-tomograms: aligned voxels by the true pose,
    classified by the nearest class mean and by a linear probe on their PCA(32)."""
    aligned = aligned_to_template_frame(ds)
    pcs = PCA(32, random_state=0).fit_transform(aligned)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {
        "nearest_class_mean": round(nearest_mean_accuracy(aligned, ds.labels), 4),
        "pca32_linear_probe": round(float(cross_val_score(probe, pcs, ds.labels, cv=5).mean()), 4),
    }


def domain_pose_oracle(folder: Path, seed: int = 23) -> dict:
    """The true-pose ceiling on the adaptation protocol's four domains as that protocol scores them (the rare
    class cut to its 2 %): nearest class mean accuracy, and k-means V at the true k of the aligned voxels'
    PCA(32) (the adaptation issue's measure)."""
    from adaptation_protocol import DOMAINS, RARE_COUNT

    from deepfinder_unsup.io.dataset import SubtomoDataset, read_dataset

    out = {}
    for name, (_, rare_name) in DOMAINS.items():
        ds = read_dataset(folder / f"{name}.h5")  # made by adaptation_protocol.py
        rare = next(label for label, n in ds.class_names.items() if n == rare_name)
        labels = ds.labels
        keep_rare = np.random.default_rng(seed).choice(np.flatnonzero(labels == rare), RARE_COUNT, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(labels != rare), keep_rare]))  # as domain_data keeps
        sub = SubtomoDataset(ds.subtomograms[keep], [ds.objl[i] for i in keep], ds.voxel_size, ds.attrs)
        truth, aligned = sub.labels, aligned_to_template_frame(sub)
        k = len(np.unique(truth))
        pcs = PCA(32, random_state=0).fit_transform(aligned)
        out[name] = {
            "n": int(len(truth)),
            "nearest_class_mean": round(nearest_mean_accuracy(aligned, truth), 4),
            "pca32_kmeans_v_true_k": round(max(kmeans_v(pcs, truth, k)[0], kmeans_v(unit(pcs), truth, k)[0]), 4),
        }
        print(name, out[name], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["general"], help="model files or shipped names")
    parser.add_argument("--classes", type=int, default=100, help="procedural seeds from --first-seed")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=FIRST_SEED,
        help="1,000,000: the protocol's never-trained seeds; 0: seeds every general model trained on",
    )
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--data", default="benchmarks/data/information_limit", help="sets (made if absent)")
    parser.add_argument(
        "--pose-oracle", action="store_true", help="also the true-pose ceiling (aligned voxels, nearest class mean)"
    )
    parser.add_argument(
        "--domains",
        help="instead: the true-pose ceiling on the adaptation protocol's domains in this folder "
        "(benchmarks/data/domains)",
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.domains:
        results = domain_pose_oracle(Path(args.domains))
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))
        return
    from deepfinder_unsup._quiet import import_tensorflow_quietly
    from deepfinder_unsup.extract import normalise
    from deepfinder_unsup.io.dataset import read_dataset

    import_tensorflow_quietly()
    from deepfinder_unsup.embed import Embedder

    embedders = {str(m): Embedder(m, tta=False).fit() for m in args.models}
    results: dict = {
        "classes": args.classes,
        "first_seed": args.first_seed,
        "per_class": args.per_class,
        "seed": args.seed,
        "sets": {},
    }
    for name, params in step_configs().items():
        t0 = time.time()
        origin = "" if args.first_seed == FIRST_SEED else f"_from{args.first_seed}"
        path = make_set(
            Path(args.data) / f"{name}_{args.classes}x{args.per_class}_s{args.seed}{origin}.h5",
            params,
            args.classes,
            args.first_seed,
            args.per_class,
            args.seed,
        )
        ds = read_dataset(path)
        flat = normalise(ds.subtomograms).reshape(len(ds.labels), -1)
        row = {
            "changes": STEPS[name],
            "pca32_raw_voxels": scores(PCA(32, random_state=0).fit_transform(flat), ds.labels),
        }
        if args.pose_oracle:
            row["true_pose_aligned_voxels"] = pose_oracle_scores(ds)
        for model, embedder in embedders.items():
            row[model] = scores(embedder.transform(ds.subtomograms), ds.labels)
        row["seconds"] = round(time.time() - t0, 1)
        results["sets"][name] = row
        print(name, row, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
