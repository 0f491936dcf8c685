"""Which pose-free pooling of DeepFinder's encoder maps keeps the detail that separates own SHREC'21's medium pairs?

    python benchmarks/results/shrec21_pooling_session62.py MODEL [--per-class 60] > OUT

Session 61 found that the encoder's pose-bound maps separate the medium pairs (0.94-0.97 in one fixed pose) and the
head's pose-free reduction does not (0.84-0.93). Before training a new head, this asks which reduction of the SAME
frozen maps, in random poses as always, keeps the detail for a linear probe: a head's Dense over it can do no
better than what a probe over it finds (with the maps trained only for the old head). Poolings of a layer's maps
X (n positions x c channels), each pose-free (a rotation about the box centre permutes positions, up to the
grid's interpolation, and none of these depends on their order within a shell):
- ``mean``: the channel means (what ``gap`` sees); ``mean_max``: + the channel maxima (the branches' pooling);
- ``second_order``: the channel Gram matrix X^T X / n (upper triangle), signed square root, unit length: bilinear
  pooling (Lin et al. 2015), the co-occurrence of features across the box;
- ``shells``: the channel means in concentric shells about the box centre (the particle is centred): a radial
  profile of each feature, rotation-invariant and keeping where from the centre a feature lies;
- ``shells_second_order``: both.
Probes: a 5-fold two-class logistic regression on standardised features, through PCA(32) like the other studies
(``pca32``), and on all of them with an L2 penalty (``full``, C = 0.05).

Result (session 62, `general`, 60 each, seed 62; benchmarks/results/shrec21_pooling_general52_session62.json),
pca32 / full: no fixed pose-free pooling of the frozen maps beats the trained 32-D embedding (random poses, same
boxes' kind: 0.70-0.92 over the medium pairs in sessions 61-62). encoder_conv8 (10^3 x 64): 1qvr/3cf3 mean 0.75 /
0.80, second order 0.73 / 0.73, shells 0.69 / 0.76; 1bxn/1qvr 0.79 / 0.79, 0.78 / 0.75, 0.73 / 0.79; 1u6g/3d2f
0.77 / 0.77, 0.80 / 0.83, 0.81 / 0.82. encoder_conv4 (20^3): chance (0.47-0.63) whatever the pooling; head_conv2
below encoder_conv8; 3gl1/3h84 chance everywhere. The maps' detail is tied to positions; no reduction of fixed
maps makes it pose-free, so a new head must learn pose-free features of its own (what the bilinear branch's
convolution is for, session 62's run; trained 7 epochs, its own pooled numbers (``--layers head_bilinear_reduce``
on runs/bil62/epoch_007.keras) probe the medium pairs at 0.70-0.81: no better). A canonical alignment of each box
by its density's inertia axes (a quick check in the same session, not kept) did not help either: raw voxels
0.49-0.60 after it.
"""

import argparse
import json
import sys

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfinder_unsup._quiet import import_tensorflow_quietly

PAIRS = [("1qvr", "3cf3"), ("1bxn", "1qvr"), ("1u6g", "3d2f"), ("3gl1", "3h84")]
MAPS = "../shared/structures/maps_10A"
SHELL_EDGES = (1.5, 2.5, 3.5, 4.5)  # in map voxels from the centre (10^3 maps: 4.4 voxels at the box's face centre)


def pair_boxes(pair, per_class: int, seed: int):
    """``per_class`` sub-tomograms of each structure of the pair at the default microscope, random poses."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    structures = load_structures([f"{MAPS}/{name}.mrc" for name in pair])
    vols, objl, _ = simulate_dataset(structures, per_class, SimConfig(), seed=seed, n_workers=1, progress=False)
    labels = np.array([o["label"] for o in objl])
    keep = labels != 0
    return vols[keep], labels[keep]


def layer_maps(model, layers: list[str], vols: np.ndarray) -> dict[str, np.ndarray]:
    """Each named layer's maps (b, z, y, x, c) for the boxes, normalised as ``embed`` does."""
    import keras

    from deepfinder_unsup.volume import normalise

    sub = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    parts: list[list[np.ndarray]] = [[] for _ in layers]
    for i in range(0, len(vols), 16):
        outs = sub(normalise(vols[i : i + 16])[..., None], training=False)
        for store, out in zip(parts, outs if len(layers) > 1 else [outs]):
            store.append(np.asarray(out, np.float32))
    return {name: np.concatenate(p) for name, p in zip(layers, parts)}


def shell_index(size: int) -> np.ndarray:
    """Each voxel's shell (0 .. len(SHELL_EDGES)) by its distance from the centre of a size^3 grid, scaled to 10^3."""
    centre = (size - 1) / 2
    grid = np.indices((size,) * 3) - centre
    radius = np.sqrt((grid**2).sum(0)) * 10 / size
    return np.digitize(radius, SHELL_EDGES).reshape(-1)


def second_order(flat: np.ndarray) -> np.ndarray:
    """Bilinear pooling: upper triangle of X^T X / n per box, signed square root, unit rows."""
    gram = np.einsum("bnc,bnd->bcd", flat, flat) / flat.shape[1]
    rows, cols = np.triu_indices(flat.shape[2])
    upper = gram[:, rows, cols]
    root = np.sign(upper) * np.sqrt(np.abs(upper))
    return root / np.maximum(np.linalg.norm(root, axis=1, keepdims=True), 1e-12)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def poolings(maps: np.ndarray) -> dict[str, np.ndarray]:
    """The pose-free descriptors of one layer's maps."""
    b, size = len(maps), maps.shape[1]
    flat = maps.reshape(b, -1, maps.shape[-1])
    shells = shell_index(size)
    shell_means = np.concatenate([flat[:, shells == s].mean(1) for s in np.unique(shells)], axis=1)
    so = second_order(flat)
    return {
        "mean": flat.mean(1),
        "mean_max": np.concatenate([flat.mean(1), flat.max(1)], axis=1),
        "second_order": so,
        "shells": shell_means,
        "shells_second_order": np.concatenate([unit_rows(shell_means), so], axis=1),
    }


def probe(features: np.ndarray, labels: np.ndarray, pca: bool) -> float:
    """5-fold two-class logistic probe on standardised features (through PCA(32) or all, L2-penalised)."""
    steps = [StandardScaler()]
    if pca:
        steps.append(PCA(min(32, features.shape[1]), random_state=0))
    steps.append(LogisticRegression(C=1.0 if pca else 0.05, max_iter=5000))
    return round(float(cross_val_score(make_pipeline(*steps), features, labels, cv=5).mean()), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=62)
    parser.add_argument("--layers", nargs="*", default=["encoder_conv4", "encoder_conv8", "head_conv2"])
    args = parser.parse_args()
    import_tensorflow_quietly()
    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model

    model, _ = load_model(resolve_model_path(args.model))
    result = {"model": args.model, "per_class": args.per_class, "seed": args.seed, "pairs": {}}
    for pair in PAIRS:
        vols, labels = pair_boxes(pair, args.per_class, args.seed)
        scores = {}
        for layer, maps in layer_maps(model, args.layers, vols).items():
            for name, f in poolings(maps).items():
                scores[f"{layer}/{name}"] = {"pca32": probe(f, labels, True), "full": probe(f, labels, False)}
        result["pairs"]["/".join(pair)] = scores
        print(pair, json.dumps(scores), file=sys.stderr, flush=True)
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
