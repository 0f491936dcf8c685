"""Does the layer before the 32-D embedding carry more about never-trained structures than the embedding?

Contrastive and margin-trained networks often keep more of what transfers in the layer before their projection
(SimCLR's h against z). f_theta's ``embedding`` is a linear map of ``head_relu`` (128-D, after the head's sum and
ReLU); this script reads both (and any other named layers) from one model on one labelled set, as the mean over
the four wedge-symmetric views with ``--tta`` (``embed``'s default) or one view, and scores each feature matrix
with the protocol's measures (``protocol.score_features``: V at the true k, raw and L2, the probe, the real six,
bound/free) plus the same after PCA to 32 dimensions (fitted on the set itself, label-free), so a 32-D output
stays possible. Labels are used only to score.

    python benchmarks/layer_features.py --model general --data benchmarks/data/protocol.h5 --tta \
        --layers embedding head_relu --cache runs/cache --out OUT.json
    python benchmarks/layer_features.py --model general --data benchmarks/data/domains/strong_ctf.h5 --tta \
        --layers embedding head_relu --domain --out OUT.json     # an adaptation domain (true k, best V, probe)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np


def layer_features(model: str, volumes: np.ndarray, layers: list[str], tta: bool, batch: int = 32) -> dict:
    """Features of ``layers`` (name -> (N, d) float32) for normalised ``volumes``; with ``tta`` each the mean over
    the four wedge-symmetric views. ``embedding`` is read as unit vectors in both cases (its geometry is the
    cosine; ``embed`` returns it raw in one view, so the protocol's probe on it differs slightly)."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.extract import normalise
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import model_input
    from deepfinder_unsup.volume import wedge_symmetric_views

    classifier, _ = load_model(resolve_model_path(model))
    net = keras.Model(model_input(classifier), [classifier.get_layer(n).output for n in layers])
    out: dict[str, list[np.ndarray]] = {n: [] for n in layers}
    for start in range(0, len(volumes), batch):
        x = normalise(np.asarray(volumes[start : start + batch], np.float32))
        views = wedge_symmetric_views(x) if tta else [x]
        sums: dict[str, np.ndarray] = {}
        for view in views:
            values = net.predict_on_batch(np.ascontiguousarray(view)[..., None])
            values = values if isinstance(values, list | tuple) else [values]
            for name, value in zip(layers, values, strict=True):
                value = np.asarray(value, np.float32).reshape(len(x), -1)
                if name == "embedding":
                    value = value / np.maximum(np.linalg.norm(value, axis=1, keepdims=True), 1e-12)
                sums[name] = sums.get(name, 0.0) + value
        for name in layers:
            out[name].append(sums[name] / len(views))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def pca32(x: np.ndarray) -> np.ndarray:
    """The set's own PCA to 32 dimensions (label-free), on standardised columns."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return PCA(32, random_state=0).fit_transform(StandardScaler().fit_transform(x))


def domain_scores(x: np.ndarray, truth: np.ndarray) -> dict:
    """The adaptation protocol's measures without the rare class: V at the true k and the best V over k (both
    L2), 30-NN purity (cosine), the 5-fold probe."""
    from protocol import kmeans_v, unit
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import NearestNeighbors
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    u = unit(x.astype(np.float64))
    k = len(np.unique(truth))
    best = max(kmeans_v(u, truth, kk, n_init=4)[0] for kk in range(max(2, k - 2), k + 4))
    _, idx = NearestNeighbors(n_neighbors=31).fit(u).kneighbors(u)
    purity = float((truth[idx[:, 1:]] == truth[:, None]).mean())
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {
        "v_true_k_l2": round(kmeans_v(u, truth, k, n_init=10)[0], 4),
        "v_best_l2": round(best, 4),
        "purity_30nn": round(purity, 4),
        "linear_probe_accuracy": round(float(cross_val_score(probe, x, truth, cv=5).mean()), 4),
    }


def cached(cache: Path | None, key_parts: list, compute) -> dict:
    """``compute()``'s arrays, kept in ``cache`` under a key of ``key_parts``."""
    if cache is None:
        return compute()
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:24]
    path = cache / f"layers_{key}.npz"
    if path.exists():
        return dict(np.load(path))
    values = compute()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), **values)
    path.with_suffix(".tmp.npz").replace(path)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="general")
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--layers", nargs="+", default=["embedding", "head_relu"])
    parser.add_argument("--tta", action="store_true", help="the mean over the four wedge-symmetric views")
    parser.add_argument("--domain", action="store_true", help="score as an adaptation domain, not the protocol")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from protocol import score_features

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.io.dataset import read_dataset

    model_hash = hashlib.sha256(resolve_model_path(args.model).read_bytes()).hexdigest()
    results: dict = {"model": args.model, "tta": args.tta, "layers": args.layers, "sets": {}}
    for path in args.data:
        data = read_dataset(path)
        truth = np.asarray(data.labels)
        stat = Path(path).stat()
        features = cached(
            args.cache,
            [model_hash, str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, args.layers, args.tta],
            lambda data=data: layer_features(args.model, data.subtomograms, args.layers, args.tta),
        )
        scores = {}
        for name in args.layers:
            for variant, x in ((name, features[name]), (f"{name}+pca32", pca32(features[name]))):
                x = x.astype(np.float64)
                scores[variant] = domain_scores(x, truth) if args.domain else score_features(x, truth, data.class_names)
                scores[variant]["dim"] = int(x.shape[1])
                print(path, variant, scores[variant], flush=True)
        results["sets"][path] = scores
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
