"""Does the model see the membrane? The protocol's bound/free pair read three ways (#9)

    python benchmarks/binding_readout.py --models general [runs/X/model.keras ...] --out OUT.json

The protocol scores the membrane-bound vs free copies of a held-out structure (``protocol.BOUND_PAIR``) by k-means
at k = 2 on the features. This says why a model scores what it does: the same 2-means V, a 5-fold logistic
probe on the 32-D features (is the difference in them at all?), and the model's own binding output (trained
since session 5: free / membrane surface / transmembrane), how many of each class it calls what.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import protocol


def readout(model: str, volumes: np.ndarray, truth: np.ndarray, names: dict[int, str]) -> dict:
    """2-means V, probe accuracy and the binding output's calls per class of the pair."""
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import BINDING_LAYER, BINDING_STATES, EMBEDDING_LAYER

    classifier, _ = load_model(resolve_model_path(model))
    outputs = [classifier.get_layer(EMBEDDING_LAYER).output]
    has_binding = any(layer.name == BINDING_LAYER for layer in classifier.layers)
    if has_binding:
        outputs.append(classifier.get_layer(BINDING_LAYER).output)
    network = keras.Model(classifier.inputs, outputs)
    result = network.predict(volumes[..., None], verbose=0, batch_size=16)
    features = np.asarray(result[0] if has_binding else result, np.float64)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    out: dict = {
        "n": int(len(truth)),
        "v_kmeans_k2": round(protocol.kmeans_v(protocol.unit(features), truth, 2, n_init=10)[0], 4),
        "probe_accuracy": round(float(cross_val_score(probe, features, truth, cv=5).mean()), 4),
    }
    if has_binding:
        calls = np.asarray(result[1]).argmax(axis=1)
        out["binding_calls"] = {
            names[int(c)]: {s: int(np.sum(calls[truth == c] == i)) for i, s in enumerate(BINDING_STATES)}
            for c in np.unique(truth)
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["general"])
    parser.add_argument("--data", default=str(Path(__file__).parent / "data" / "protocol.h5"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.volume import normalise

    data = read_dataset(args.data)
    by_name = {v: k for k, v in data.class_names.items()}
    keep = np.isin(data.labels, [by_name[n] for n in protocol.BOUND_PAIR])
    volumes = normalise(data.subtomograms[keep].astype(np.float32))
    results = {"data": args.data, "pair": list(protocol.BOUND_PAIR)}
    for model in args.models:
        results[model] = readout(model, volumes, data.labels[keep], data.class_names)
        print(model, results[model], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
