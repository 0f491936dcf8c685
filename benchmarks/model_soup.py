"""Model soup: do the averaged weights of several continuations beat each of them on the monitor set? (#9)

    python benchmarks/model_soup.py --models shipped=general a=runs/x/best.keras b=runs/y/last.keras \
        --data runs/monitor/dataset.h5 --out soup.json --save-greedy soup.keras

Checkpoints fine-tuned from one model lie in one basin, where the mean of their weights often generalises
better than any one of them (Wortsman et al. 2022, "model soups"). Sessions 5-7 left several continuations of
the shipped model whose monitor scores differ by about the monitor's own noise. Scored like the training's
monitor (k-means at the true k on the L2-normalised embeddings), but as the mean of three k-means seeds: each
checkpoint, the uniform soup of all, and the greedy soup (checkpoints added best-first, each kept only if the
soup's score rises). The first model gives the architecture; layers are averaged by name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def monitor_score(model, volumes: np.ndarray, truth: np.ndarray, seeds: int = 3) -> float:
    """Mean over k-means seeds of the V-measure at the true k of the unit embeddings."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from deepfinder_unsup.model.classifier import embedding_model

    emb = embedding_model(model).predict(volumes[..., None], batch_size=64, verbose=0).astype(np.float64)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    k = len(np.unique(truth))
    return float(
        np.mean([v_measure_score(truth, KMeans(k, n_init=4, random_state=s).fit_predict(unit)) for s in range(seeds)])
    )


def soup(models: dict, names: list[str]):
    """A copy of the first model with every weighted layer the mean of that layer in ``names``' models."""
    import keras

    base = next(iter(models.values()))
    out = keras.models.clone_model(base)
    out.set_weights(base.get_weights())
    for layer in out.layers:
        if layer.weights:
            stacks = zip(*(models[n].get_layer(layer.name).get_weights() for n in names))
            layer.set_weights([np.mean(arrays, axis=0) for arrays in stacks])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="NAME=PATH (a file or a shipped name)")
    parser.add_argument("--data", default="runs/monitor/dataset.h5", help="labelled monitor set")
    parser.add_argument("--out", required=True, help="JSON results")
    parser.add_argument("--save-greedy", help="write the greedy soup here (.keras, no card)")
    args = parser.parse_args()
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.model import classifier  # noqa: F401  (registers the package's layers)

    data = read_dataset(args.data)
    paths = dict(spec.split("=", 1) for spec in args.models)
    models = {n: keras.models.load_model(resolve_model_path(p), compile=False) for n, p in paths.items()}
    scores = {n: monitor_score(m, data.subtomograms, data.labels) for n, m in models.items()}
    print({n: round(s, 4) for n, s in scores.items()}, flush=True)
    uniform = monitor_score(soup(models, list(models)), data.subtomograms, data.labels)
    print("uniform soup", round(uniform, 4), flush=True)
    order = sorted(scores, key=scores.get, reverse=True)
    greedy, best, tried = [order[0]], scores[order[0]], []
    for name in order[1:]:
        score = monitor_score(soup(models, [*greedy, name]), data.subtomograms, data.labels)
        tried.append({"members": [*greedy, name], "v": round(score, 4)})
        print(tried[-1], flush=True)
        if score > best:
            greedy, best = [*greedy, name], score
    results = {
        "models": paths,
        "checkpoints": {n: round(s, 4) for n, s in scores.items()},
        "uniform_soup": round(uniform, 4),
        "greedy_tries": tried,
        "greedy_soup": {"members": greedy, "v": round(best, 4)},
    }
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.save_greedy:
        soup(models, greedy).save(args.save_greedy)


if __name__ == "__main__":
    main()
