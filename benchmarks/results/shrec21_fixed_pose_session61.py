"""Own SHREC'21's medium pairs with every particle in ONE pose: do the features hold their shapes, but not pose-free?

    python benchmarks/results/shrec21_fixed_pose_session61.py MODEL [--per-class 60] > OUT

For each pair (1qvr / 3cf3, 1bxn / 1qvr, 1u6g / 3d2f, and the small 3gl1 / 3h84), ``--per-class`` sub-tomograms of
each structure at the default microscope (``SimConfig()``, what runs/val_shrec21_big uses), simulated twice from
the same seed: with random poses as always, and with every particle (and neighbour) in the identity pose (the
simulator's rotation draw replaced, for this study only). A 5-fold two-class logistic probe on the model's unit
32-D embedding (one view) for each, and, for the fixed pose, on raw voxels times the recorded polarity (PCA(32):
the oracle's features without any alignment to do). If the fixed pose separates the pair and random poses do not,
the features describe these shapes, but not independently of their pose: what is missing is invariance. If the
features fail in the fixed pose too while the raw voxels do not, they do not keep the shape detail at all.

Result (session 61, `general`, 60 each, seed 61; benchmarks/results/shrec21_fixed_pose_general52_session61.json):
random pose / fixed pose / raw voxels in the fixed pose: 1qvr/3cf3 0.82 / 0.83 / 0.98, 1bxn/1qvr 0.86 / 0.85 /
0.98, 1u6g/3d2f 0.92 / 0.93 / 0.95, 3gl1/3h84 0.58 / 0.62 / 0.82: not invariance; the detail is not kept.
By layer in the fixed pose (``--layers encoder_pool1 encoder_pool2 encoder_conv8 head_pool head_wide_conv3 head_relu
embedding``; shrec21_fixed_pose_layers_general52_session61.json), 1qvr/3cf3: 0.82, 0.95, 0.94, 0.94, 0.83, 0.86,
0.85; the other two medium pairs alike: the encoder's maps (and the head's pooled 5^3 copy of them) keep the
detail; the head's reduction to a pose-free 128 / 32-D description loses it.
"""

import argparse
import json
import sys
from unittest import mock

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from deepfinder_unsup._quiet import import_tensorflow_quietly

PAIRS = [("1qvr", "3cf3"), ("1bxn", "1qvr"), ("1u6g", "3d2f"), ("3gl1", "3h84")]
MAPS = "../shared/structures/maps_10A"


def identity_rotations(n: int, rng):
    """Stands in for ``geometry.random_rotations``: n identity rotations (the generator advanced as by a draw)."""
    from scipy.spatial.transform import Rotation

    Rotation.random(n, random_state=rng)
    return Rotation.identity(n)


def pair_boxes(pair, per_class: int, seed: int, fixed: bool):
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    structures = load_structures([f"{MAPS}/{name}.mrc" for name in pair])
    config = SimConfig()
    if fixed:
        with mock.patch("deepfinder_unsup.simulate.scene.random_rotations", identity_rotations):
            vols, objl, _ = simulate_dataset(structures, per_class, config, seed=seed, n_workers=1, progress=False)
    else:
        vols, objl, _ = simulate_dataset(structures, per_class, config, seed=seed, n_workers=1, progress=False)
    labels = np.array([o["label"] for o in objl])
    polarity = np.array([float(o.get("polarity", 1.0)) for o in objl], np.float32)
    keep = labels != 0  # the negatives: not part of the pair
    return vols[keep], labels[keep], polarity[keep]


def raw_voxel_features(vols: np.ndarray, polarity: np.ndarray) -> np.ndarray:
    """The oracle's features where the pose is already the same: normalised voxels times the recorded polarity,
    PCA(32), unit rows (centres still shifted by up to the simulator's jitter)."""
    from sklearn.decomposition import PCA

    from deepfinder_unsup.volume import normalise

    flat = normalise(vols).reshape(len(vols), -1) * polarity[:, None]
    features = PCA(32, random_state=0).fit_transform(flat)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def layer_features(model_name: str, layers: list[str], vols: np.ndarray) -> dict[str, np.ndarray]:
    """Each named layer's output for the boxes (one view, normalised as ``embed`` does), flattened, PCA(32), unit
    rows: where along the network the detail the raw voxels hold is lost."""
    import keras
    from sklearn.decomposition import PCA

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.volume import normalise

    model, _ = load_model(resolve_model_path(model_name))
    sub = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    outputs: list[list[np.ndarray]] = [[] for _ in layers]
    for i in range(0, len(vols), 16):
        for store, out in zip(outputs, sub(normalise(vols[i : i + 16])[..., None], training=False)):
            store.append(np.asarray(out, np.float32).reshape(len(out), -1))
    features = {}
    for name, parts in zip(layers, outputs):
        f = PCA(32, random_state=0).fit_transform(np.concatenate(parts))
        features[name] = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return features


def probe_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """A 5-fold two-class logistic probe's accuracy."""
    probe = LogisticRegression(max_iter=3000)
    return round(float(cross_val_score(probe, features, labels, cv=5).mean()), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=61)
    parser.add_argument("--layers", nargs="*", default=[], help="also probe these layers' outputs in the fixed pose")
    args = parser.parse_args()
    import_tensorflow_quietly()
    from deepfinder_unsup.embed import Embedder

    embedder = Embedder(args.model, precision="float32", tta=False).fit()
    result = {"model": args.model, "per_class": args.per_class, "seed": args.seed, "pairs": {}}
    for pair in PAIRS:
        scores = {}
        for fixed in (False, True):
            vols, labels, polarity = pair_boxes(pair, args.per_class, args.seed, fixed)
            z = embedder.transform(vols)
            z = z / np.linalg.norm(z, axis=1, keepdims=True)
            name = "fixed_pose" if fixed else "random_pose"
            scores[name] = probe_accuracy(z, labels)
            if fixed:
                scores["fixed_pose_raw_voxels_polarity"] = probe_accuracy(raw_voxel_features(vols, polarity), labels)
                for layer, f in layer_features(args.model, args.layers, vols).items() if args.layers else ():
                    scores[f"fixed_pose_layer_{layer}"] = probe_accuracy(f, labels)
        result["pairs"]["/".join(pair)] = scores
        print(pair, scores, file=sys.stderr)
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
