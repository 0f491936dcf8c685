"""Is one model's V-measure really above another's on a labelled set, or within the set's sampling noise?

Both models embed the same labelled sub-tomograms once (one view unless ``--tta``, float32 unless ``--precisions``, as
``protocol.py`` scores them);
then the picks are resampled with replacement within each class (the class sizes kept) ``--resamples`` times,
and on each resample k-means at the true k (L2-normalised features, as the protocol's ``v_true_k_l2`` and
``v_own_shrec21``) scores both models on the same picks. The paired differences (B - A) give the mean and a
90 % interval: a difference whose interval holds 0 is not one the set can tell. Labels are used only to score.

    python benchmarks/paired_bootstrap.py --models general benchmarks/checkpoints/continue_session20.keras \
        --data runs/val_shrec21/dataset.h5 --out OUT.json
    python benchmarks/paired_bootstrap.py --models A B --data benchmarks/data/protocol.h5 \
        --classes 2uv8 6utj 6pxm 7n4y 5tqq negative --out OUT.json       # the protocol's real held-out six
    python benchmarks/paired_bootstrap.py --models general general --precisions float32 int8 \
        --data runs/val_shrec21_big/dataset.h5 --out OUT.json          # one model, two arithmetics
    python benchmarks/paired_bootstrap.py --models general general --tta off on \
        --data benchmarks/data/protocol.h5 --cache runs/cache --out OUT.json   # one view against embed's four
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np


def stratified_resample(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn with replacement within each class, each class keeping its size."""
    return np.concatenate([rng.choice(np.flatnonzero(truth == c), (truth == c).sum()) for c in np.unique(truth)])


def kmeans_v(unit: np.ndarray, truth: np.ndarray, seed: int, n_init: int) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    k = len(np.unique(truth))
    return float(v_measure_score(truth, KMeans(k, n_init=n_init, random_state=seed).fit_predict(unit)))


def paired_differences(
    features_a: np.ndarray, features_b: np.ndarray, truth: np.ndarray, resamples: int, seed: int = 0, n_init: int = 4
) -> dict:
    """V of both feature sets on the full set and on ``resamples`` shared stratified resamples; the paired
    differences' mean, 5th and 95th percentiles and the share of resamples where B scores higher."""
    rng = np.random.default_rng(seed)
    diffs = []
    for i in range(resamples):
        idx = stratified_resample(truth, rng)
        v_a, v_b = (kmeans_v(f[idx], truth[idx], i, n_init) for f in (features_a, features_b))
        diffs.append(v_b - v_a)
    d = np.array(diffs)
    return {
        "v_a": round(kmeans_v(features_a, truth, 0, 10), 4),
        "v_b": round(kmeans_v(features_b, truth, 0, 10), 4),
        "mean_difference": round(float(d.mean()), 4),
        "interval_90": [round(float(np.percentile(d, 5)), 4), round(float(np.percentile(d, 95)), 4)],
        "share_b_higher": round(float((d > 0).mean()), 3),
        "resamples": resamples,
    }


def cached_features(embedder, data_path: str, volumes: np.ndarray, keep: np.ndarray, cache: Path | None) -> np.ndarray:
    """The embedder's features of the kept sub-tomograms, read from ``cache`` when the same model file (by
    content), data file (by path, size and time), views, arithmetic and selection were embedded before."""
    if cache is None:
        return embedder.transform(volumes[keep])
    stat = Path(data_path).stat()
    key = hashlib.sha256(
        json.dumps(
            [
                hashlib.sha256(embedder._resolved_path().read_bytes()).hexdigest(),
                str(Path(data_path).resolve()),
                stat.st_size,
                stat.st_mtime_ns,
                embedder.precision,
                bool(embedder.tta_),
                hashlib.sha256(np.packbits(keep).tobytes()).hexdigest(),
            ]
        ).encode()
    ).hexdigest()[:24]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    features = embedder.transform(volumes[keep])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), features)
    path.with_suffix(".tmp.npy").replace(path)
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs=2, required=True, metavar=("A", "B"), help="model files or shipped names")
    parser.add_argument("--data", nargs="+", required=True, help="labelled data sets (simulate's dataset.h5)")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--classes", nargs="*", help="score only these class names (e.g. the protocol's real ones)")
    parser.add_argument(
        "--precisions",
        nargs=2,
        default=["float32", "float32"],
        metavar=("PA", "PB"),
        help="each model's arithmetic (float32, bfloat16, int8)",
    )
    parser.add_argument(
        "--tta",
        nargs=2,
        choices=["off", "on"],
        default=["off", "off"],
        metavar=("TA", "TB"),
        help="each model's views: off (one) or on (the four wedge-symmetric views of embed --tta)",
    )
    parser.add_argument("--cache", type=Path, help="keep each model's features here and reuse them (e.g. general's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.threads import numeric_threads_on_free_cores

    embedders = [
        Embedder(m, precision=p, tta=t == "on").fit()
        for m, p, t in zip(args.models, args.precisions, args.tta, strict=True)
    ]
    results: dict = {
        "a": args.models[0],
        "b": args.models[1],
        "precisions": args.precisions,
        "tta": args.tta,
        "classes": args.classes,
        "sets": {},
    }
    for path in args.data:
        data = read_dataset(path)
        truth = np.asarray(data.labels)
        keep = np.ones(len(truth), bool)
        if args.classes:
            keep = np.isin(truth, [c for c, name in data.class_names.items() if name in args.classes])
        a, b = (
            normalise_features(cached_features(e, path, data.subtomograms, keep, args.cache).astype(np.float64))
            for e in embedders
        )
        with numeric_threads_on_free_cores():  # k-means beside a training: the idle cores only (threads.py)
            results["sets"][path] = paired_differences(a, b, truth[keep], args.resamples)
        print(path, results["sets"][path], flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
