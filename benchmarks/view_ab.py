"""Does a model embed a particle and its wedge-symmetric views alike, and what does ``--tta`` add? (issue #9)

    python benchmarks/view_ab.py --models shipped=general continue=runs/cont6_baseline/best.keras \
        view=runs/view6/best.keras --data runs/monitor/dataset.h5 --out view_ab.json

Per model, on a labelled data set (the monitor set: procedural classes no training touched): k-means V-measure
at the true k on the unit embeddings (mean over 3 seeds), plain and with the four-view mean of ``--tta``, and
the mean cosine distance between a particle's embedding and each of its three views'. A training checkpoint
(``best.keras``) has no model card: it gets the shipped model's, which describes the same network.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def with_card(path: str, folder: Path) -> str:
    """``path`` itself if it is a shipped name or carries a card; else a copy with the shipped model's card."""
    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.io import InputError
    from deepfinder_unsup.model.card import load_model, read_card, save_model

    try:
        read_card(resolve_model_path(path))
        return path
    except InputError:
        import keras

        from deepfinder_unsup.model import classifier  # noqa: F401  (registers the package's layers)

        card = read_card(resolve_model_path("general"))
        copy = folder / (Path(path).parent.name + ".keras")
        save_model(keras.models.load_model(path, compile=False), copy, {**card, "checkpoint": str(path)})
        load_model(copy)
        return str(copy)


def unit(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def mean_v(features: np.ndarray, truth: np.ndarray, seeds: int = 3) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    k = len(np.unique(truth))
    return float(
        np.mean(
            [v_measure_score(truth, KMeans(k, n_init=4, random_state=s).fit_predict(features)) for s in range(seeds)]
        )
    )


def view_distance(views: list[np.ndarray]) -> float:
    """Mean cosine distance between each unit embedding and its three views'."""
    return float(np.mean([1 - np.sum(views[0] * w, axis=1).mean() for w in views[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="NAME=MODEL (a file or a shipped name)")
    parser.add_argument("--data", required=True, help="labelled data set (simulate's dataset.h5)")
    parser.add_argument("--out", required=True, help="JSON results")
    args = parser.parse_args()

    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.volume import wedge_symmetric_views

    data = read_dataset(args.data)
    volumes, truth = np.asarray(data.subtomograms, np.float32), data.labels
    results = {"data": args.data, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.models:
            name, path = item.split("=", 1)
            embedder = Embedder(with_card(path, Path(tmp)), precision="float32", tta=False).fit()
            views = [unit(embedder.transform(np.ascontiguousarray(v))) for v in wedge_symmetric_views(volumes)]
            results["models"][name] = {
                "model": path,
                "v_plain": round(mean_v(views[0], truth), 4),
                "v_tta": round(mean_v(unit(np.mean(views, axis=0)), truth), 4),
                "view_cosine_distance": round(
                    float(np.mean([1 - np.sum(views[0] * w, axis=1).mean() for w in views[1:]])), 4
                ),
            }
            print(name, results["models"][name], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
