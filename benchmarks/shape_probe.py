"""How much of a structure's size and shape do a model's features carry for structures it never saw?

Each protocol sub-tomogram's features (L2-normalised, as ``cluster`` and the protocol see them) are regressed onto
the shape descriptors of the structure it was simulated from (``deepfinder_unsup.simulate.descriptors``: volume,
radius of gyration, two axis ratios, the mass within six radii), by ridge regression cross-validated by STRUCTURE
(5 folds of classes: every prediction is of a structure the regression never fitted). Reported per descriptor:
R^2 (1 = the features give it exactly, 0 = no better than its mean). The negatives are left out (no structure).
Raw voxels' PCA(32) is the baseline, as in the protocol.

    python benchmarks/shape_probe.py --models general runs/x/epoch_003.keras --cache runs/cache --out OUT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def class_descriptor_table(names: dict[int, str], voxel_size: float) -> dict[int, np.ndarray]:
    """{label: descriptors} of the protocol's classes, from the same structure files the protocol simulated."""
    import sys

    sys.path.insert(0, str(HERE))
    from protocol import protocol_specs

    from deepfinder_unsup.simulate.descriptors import shape_descriptors
    from deepfinder_unsup.simulate.structures import load_structures

    by_name = {s.name: shape_descriptors(s) for s in load_structures(protocol_specs(), voxel_size)}
    return {label: by_name[name] for label, name in names.items() if name in by_name}


def grouped_r2(features: np.ndarray, targets: np.ndarray, groups: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Per target column, R^2 of ridge predictions cross-validated by group (5 folds; every group predicted once,
    by a regression that never saw it)."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    predicted = np.zeros_like(targets)
    for fit, held in GroupKFold(5).split(features, targets, groups):
        model = make_pipeline(StandardScaler(), Ridge(alpha)).fit(features[fit], targets[fit])
        predicted[held] = model.predict(features[held])
    residual = ((targets - predicted) ** 2).sum(axis=0)
    spread = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - residual / np.maximum(spread, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="model files or shipped names")
    parser.add_argument("--data", default=str(HERE / "data" / "protocol.h5"))
    parser.add_argument("--cache", type=Path, help="paired_bootstrap.py's feature cache (the same keys)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from paired_bootstrap import cached_features
    from sklearn.decomposition import PCA

    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.simulate.descriptors import DESCRIPTOR_NAMES

    data = read_dataset(args.data)
    truth = np.asarray(data.labels)
    table = class_descriptor_table(data.class_names, data.voxel_size)
    keep = np.isin(truth, list(table))
    targets = np.stack([table[int(label)] for label in truth[keep]]).astype(np.float64)
    results: dict = {"data": args.data, "descriptors": list(DESCRIPTOR_NAMES), "structures": len(table), "r2": {}}
    raw = data.subtomograms[keep].reshape(int(keep.sum()), -1)
    feature_sets = {"raw_pca32": PCA(32, random_state=0).fit_transform(raw)}
    for name in args.models:
        embedder = Embedder(name, precision="float32", tta=False).fit()  # as paired_bootstrap.py
        every = np.ones(len(truth), bool)  # the whole set, as paired_bootstrap.py caches it
        features = cached_features(embedder, args.data, data.subtomograms, every, args.cache)[keep]
        feature_sets[name] = normalise_features(features.astype(np.float64))
    for name, features in feature_sets.items():
        r2 = grouped_r2(features, targets, truth[keep])
        results["r2"][name] = {d: round(float(v), 3) for d, v in zip(DESCRIPTOR_NAMES, r2, strict=True)}
        results["r2"][name]["mean"] = round(float(r2.mean()), 3)
        print(name, results["r2"][name], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
