"""Two readouts of pose invariance on a labelled set: is a cheap pose estimate or a pooled encoder map the way past
the features' limit?

Session 12's pose oracle put the limit in pose invariance: with each particle rotated back by its TRUE pose,
raw voxels are told apart at about twice the features' linear-probe accuracy. Two cheaper stand-ins, scored on
the same set (labels only to score):

``--canonical``: each box moved to the centre of mass of its low-passed density (Gaussian ``--sigma`` voxels,
the set's contrast polarity, inside ``--radius``) and rotated onto that density's principal axes (signs by the
third moments, right-handed): the classic way to give a particle a pose without a reference. Raw-voxel PCA(32)
linear probe and nearest-class-mean accuracy of the boxes as they are, canonicalised, and aligned by the true
pose (information_limit.py's oracle).

``--pooled MODEL``: DeepFinder's encoder maps (and the head's convolution maps) of a model, pooled over space by
mean + max, and by second-order (bilinear, signed square root, unit length) pooling: features with no position
left in them, so as invariant to shifts as the maps allow; against the model's 32-D embedding (one view). Linear
probe (on at most 256 principal components) and k-means V at the true k on PCA(32), unit length.

    python benchmarks/invariant_readouts.py --data benchmarks/data/protocol.h5 --canonical --out OUT.json
    python benchmarks/invariant_readouts.py --data benchmarks/data/protocol.h5 --pooled general --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from information_limit import aligned_to_template_frame, nearest_mean_accuracy
from protocol import kmeans_v, unit
from scipy import ndimage
from scipy.spatial.transform import Rotation
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

POOLED_LAYERS = ["encoder_conv4", "encoder_conv8", "head_conv2", "embedding"]


def principal_frame(volume: np.ndarray, sign: float, sigma: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre x y z relative to the box centre, 3 x 3 matrix whose columns are the density's principal axes in
    x y z, largest first, right-handed, each of the first two pointing where its third moment is positive)."""
    n = volume.shape[0]
    density = ndimage.gaussian_filter(volume.astype(np.float64), sigma) * sign
    z, y, x = np.indices(volume.shape, dtype=float) - n // 2
    density = np.where(np.sqrt(x**2 + y**2 + z**2) < radius, density, density.mean())
    weight = np.clip(density - density.mean() - 0.5 * density.std(), 0, None).ravel()
    if weight.sum() <= 0:
        weight = np.ones_like(weight)
    weight /= weight.sum()
    points = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    centre = weight @ points
    offsets = points - centre
    _, vectors = np.linalg.eigh((offsets * weight[:, None]).T @ offsets)
    axes = vectors[:, ::-1].copy()
    for i in range(2):
        if weight @ (offsets @ axes[:, i]) ** 3 < 0:
            axes[:, i] *= -1
    axes[:, 2] = np.cross(axes[:, 0], axes[:, 1])
    return centre, axes


def canonicalised(volume: np.ndarray, sign: float, sigma: float, radius: float) -> np.ndarray:
    """The box moved to its density's centre and rotated onto its principal axes."""
    from deepfinder_unsup.geometry import rotate_volume

    centre, axes = principal_frame(volume, sign, sigma, radius)
    centred = rotate_volume(volume, Rotation.identity(), shift_xyz=-centre)
    return rotate_volume(centred, Rotation.from_matrix(axes).inv())


def pca_probe(x: np.ndarray, truth: np.ndarray, dims: int, standardise: bool) -> float:
    """5-fold logistic-regression accuracy on the first ``dims`` principal components (all, if fewer); voxels
    are not standardised first (that would weigh the empty corners as much as the particle, as
    information_limit.py does not), pooled channels of different scales are."""
    x = x.astype(np.float64)
    if standardise:
        x = StandardScaler().fit_transform(x)
    if x.shape[1] > dims:
        x = PCA(dims, random_state=0).fit_transform(x)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return round(float(cross_val_score(probe, x, truth, cv=5).mean()), 4)


def canonical_scores(data, sigma: float, radius: float) -> dict:
    """Raw voxels as they are, canonicalised, and aligned by the true pose: PCA(32) probe, nearest class mean."""
    from deepfinder_unsup.simulate.like import estimate_polarity
    from deepfinder_unsup.volume import normalise

    boxes, truth = data.subtomograms, np.asarray(data.labels)
    sign = -float(estimate_polarity(boxes))  # +1 where the particles are brighter than their boxes
    t0 = time.time()
    canonical = np.stack([canonicalised(v, sign, sigma, radius) for v in boxes])
    results: dict = {"particle_brighter": sign, "sigma": sigma, "radius": radius, "seconds": round(time.time() - t0, 1)}
    for name, rows in (
        ("as_they_are", normalise(boxes).reshape(len(boxes), -1)),
        ("principal_axes", normalise(canonical).reshape(len(boxes), -1)),
        ("true_pose", aligned_to_template_frame(data)),
    ):
        results[name] = {
            "pca32_probe": pca_probe(rows, truth, 32, standardise=False),
            "nearest_class_mean": round(nearest_mean_accuracy(rows, truth), 4),
        }
        print(name, results[name], flush=True)
    return results


def pooled(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Mean + max and second-order (upper triangle, signed square root, unit length) pooling of (b, ..., c)."""
    flat = maps.reshape(len(maps), -1, maps.shape[-1]).astype(np.float32)
    gram = np.einsum("bnc,bnd->bcd", flat, flat) / flat.shape[1]
    rows, cols = np.triu_indices(flat.shape[-1])
    upper = gram[:, rows, cols]
    upper = np.sign(upper) * np.sqrt(np.abs(upper))
    return {
        "mean_max": np.concatenate([flat.mean(1), flat.max(1)], 1),
        "bilinear": upper / np.maximum(np.linalg.norm(upper, axis=1, keepdims=True), 1e-12),
    }


def pooled_scores(data, model: str, layers: list[str], batch: int = 32) -> dict:
    """Each layer's pooled maps (a 2-D layer as it is) scored by probe and V; one view."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import model_input
    from deepfinder_unsup.volume import normalise

    classifier, _ = load_model(resolve_model_path(model))
    net = keras.Model(model_input(classifier), [classifier.get_layer(n).output for n in layers])
    boxes, truth = normalise(data.subtomograms), np.asarray(data.labels)
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(boxes), batch):
        for name, out in zip(layers, net.predict_on_batch(boxes[i : i + batch, ..., None])):
            out = np.asarray(out, np.float32)
            pools = {"": out} if out.ndim == 2 else pooled(out)
            for how, rows in pools.items():
                parts.setdefault(f"{name}/{how}".rstrip("/"), []).append(rows)
    results: dict = {"model": model}
    k = len(np.unique(truth))
    for name, rows_list in parts.items():
        rows = np.concatenate(rows_list).astype(np.float64)
        scaled = StandardScaler().fit_transform(rows)
        to32 = PCA(32, random_state=0).fit_transform(scaled) if rows.shape[1] > 32 else scaled
        results[name] = {
            "dim": int(rows.shape[1]),
            "probe": pca_probe(rows, truth, 256, standardise=True),
            "v_true_k_pca32_unit": round(kmeans_v(unit(to32), truth, k)[0], 4),
        }
        print(name, results[name], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a labelled data set (.h5) with its object list's poses")
    parser.add_argument("--canonical", action="store_true")
    parser.add_argument("--sigma", type=float, default=2.0, help="low-pass before the principal axes (voxels)")
    parser.add_argument("--radius", type=float, default=16.0, help="density counted within (voxels)")
    parser.add_argument("--pooled", metavar="MODEL")
    parser.add_argument("--layers", nargs="+", default=POOLED_LAYERS)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not args.canonical and not args.pooled:
        parser.error("say what to read: --canonical and/or --pooled MODEL")
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.io.dataset import read_dataset

    data = read_dataset(args.data)
    results: dict = {"data": args.data}
    if args.canonical:
        results["canonical"] = canonical_scores(data, args.sigma, args.radius)
    if args.pooled:
        results["pooled"] = pooled_scores(data, args.pooled, args.layers)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
