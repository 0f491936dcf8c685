"""Does re-centring the 32-D features on the user's own picks help k-means across domains (issue #13)?

    python benchmarks/feature_normalisation.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 runs/monitor/dataset.h5 --domains \
        --cache runs/feats --out feature_normalisation.json [--tta]

The cheapest label-free adaptation there is: estimate the features' statistics on the user's picks and
normalise with them before clustering (the embedding-level analogue of AdaBN; centring and whitening before
length normalisation is what speaker verification does with i-vectors). Four normalisations, each followed by
k-means (4 starts, seed 0) at every k from 2 to twice the true number of classes:

- ``l2``: unit length (what ``cluster`` does);
- ``centred``: unit length, minus the picks' mean, unit length again;
- ``standardised``: unit length, minus the mean, divided per dimension by the picks' standard deviation, unit
  length again;
- ``whitened``: unit length, centred, rotated onto the principal axes and scaled to unit variance, unit length.

Per set: V-measure at the true k and the best V over the k range. A normalisation is chosen on the design
sets only (``simulate`` outputs), then scored unchanged on the four domains of ``adaptation_protocol.py``.
``--cache DIR`` keeps the features (``NAME[_tta].MODELHASH.npz``; NAME: a design set's folder or the domain;
MODELHASH: of the model file) so a rerun only clusters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _unit(f: np.ndarray) -> np.ndarray:
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def centred(f: np.ndarray) -> np.ndarray:
    u = _unit(f)
    return _unit(u - u.mean(0))


def standardised(f: np.ndarray) -> np.ndarray:
    u = _unit(f)
    return _unit((u - u.mean(0)) / u.std(0))


def whitened(f: np.ndarray) -> np.ndarray:
    u = _unit(f)
    c = u - u.mean(0)
    w, v = np.linalg.eigh(np.cov(c.T))
    return _unit(c @ v / np.sqrt(np.maximum(w, 1e-6 * w.max())))


NORMALISATIONS = {"l2": _unit, "centred": centred, "standardised": standardised, "whitened": whitened}


def score(features: np.ndarray, truth: np.ndarray) -> dict:
    """Per normalisation: (V at the true k, best V over k = 2 .. 2 x true k)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    k_true = len(np.unique(truth))
    out = {}
    for name, fn in NORMALISATIONS.items():
        u = fn(features.astype(np.float64))
        v = {
            k: v_measure_score(truth, KMeans(k, n_init=4, random_state=0).fit_predict(u))
            for k in range(2, 2 * k_true + 1)
        }
        out[name] = {"v_true_k": round(v[k_true], 4), "best_v": round(max(v.values()), 4)}
    return out


def cached_features(cache: Path | None, name: str, tta: bool, embedder, volumes, voxel_size=None) -> np.ndarray:
    """The features of set ``name`` from ``cache`` (NAME[_tta].MODELHASH.npz: another model file, another entry),
    or embedded (then stored there)."""
    import hashlib

    model = hashlib.sha256(Path(embedder._resolved_path()).read_bytes()).hexdigest()[:10]
    path = cache / f"{name}{'_tta' if tta else ''}.{model}.npz" if cache else None
    if path is not None and path.exists():
        return np.load(path)["features"]
    features = embedder.transform(np.asarray(volumes, np.float32), voxel_size)
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=features)
    return features


def study_on_sets(args: argparse.Namespace, score_fn) -> dict:
    """``score_fn(features, truth) -> {method: {score: number}}`` on every design set and (``--domains``)
    the four adaptation domains, with cached features; the mean of every score over each part as
    ``mean_design`` / ``mean_domains``. The loop shared by the studies chosen on design sets and scored on the
    domains."""
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset

    embedder = Embedder(args.model, tta=args.tta)
    results: dict = {"model": args.model, "tta": args.tta, "design": {}, "domains": {}}
    for path in args.design:
        data = read_dataset(path)
        name = Path(path).parent.name
        features = cached_features(args.cache, name, args.tta, embedder, data.subtomograms, data.voxel_size)
        results["design"][path] = score_fn(features.astype(np.float64), data.labels)
        print(path, results["design"][path], flush=True)
    if args.domains:
        from adaptation_protocol import DOMAINS, domain_data

        for name in DOMAINS:
            volumes, truth, _, _ = domain_data(name, Path(args.data), args.seed)
            features = cached_features(args.cache, name, args.tta, embedder, volumes)
            results["domains"][name] = score_fn(features.astype(np.float64), truth)
            print(name, results["domains"][name], flush=True)
    for part in ("design", "domains"):
        if results[part]:
            methods = next(iter(results[part].values()))
            results[f"mean_{part}"] = {
                m: {s: round(float(np.mean([r[m][s] for r in results[part].values()])), 4) for s in methods[m]}
                for m in methods
            }
    return results


def run_study(description: str, score_fn) -> None:
    """The command line of a design-set study: the shared options, ``--cache``, results to ``--out``."""
    from rare_rules import add_set_arguments

    parser = argparse.ArgumentParser(description=description)
    add_set_arguments(parser)
    parser.add_argument("--cache", type=Path, help="folder of cached features (NAME[_tta].MODELHASH.npz)")
    args = parser.parse_args()
    Path(args.out).write_text(json.dumps(study_on_sets(args, score_fn), indent=1))


def main() -> None:
    run_study(__doc__.splitlines()[0], score)


if __name__ == "__main__":
    main()
