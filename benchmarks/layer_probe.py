"""Where in f_theta is the class information of unseen structures? A linear probe per layer (issue #9).

    python benchmarks/layer_probe.py --model general --data benchmarks/data/protocol.h5 --out probe.json

On the validation protocol's held-out set (207 classes never trained on, 20 each, ``protocol.py``), each
layer's output is reduced to a vector per sub-tomogram (the encoder's feature maps by their global mean, and
mean + max for the last one; the pooled head input by PCA to 256) and a 5-fold logistic-regression probe is
trained on it. If the encoder held much more than the 32-D embedding, the head would be the bottleneck (and a
cheaper fix than more training); if not, the encoder's features are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LAYERS = ("encoder_conv6", "encoder_conv8", "head_pool", "head_dense", "embedding")
PCA_ABOVE = 512  # wider outputs are reduced by PCA to 256 before the probe


def layer_vectors(model_path: str, volumes: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """One vector per sub-tomogram and layer (feature maps: global mean; conv8 also mean + max)."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model import classifier  # noqa: F401  (registers the package's layers)
    from deepfinder_unsup.volume import normalise

    model = keras.models.load_model(resolve_model_path(model_path), compile=False)
    sub = keras.Model(model.input, [model.get_layer(n).output for n in LAYERS])
    parts: dict[str, list] = {n: [] for n in (*LAYERS, "encoder_conv8_mean_max")}
    for i in range(0, len(volumes), batch):
        outs = sub.predict_on_batch(normalise(np.asarray(volumes[i : i + batch], np.float32))[..., None])
        for name, o in zip(LAYERS, outs):
            o = np.asarray(o, np.float32)
            if name.startswith("encoder_"):
                parts[name].append(o.mean(axis=(1, 2, 3)))
                if name == "encoder_conv8":
                    parts["encoder_conv8_mean_max"].append(np.concatenate([o.mean((1, 2, 3)), o.max((1, 2, 3))], 1))
            else:
                parts[name].append(o.reshape(len(o), -1))
    return {n: np.concatenate(p) for n, p in parts.items()}


def probe_accuracy(x: np.ndarray, truth: np.ndarray) -> float:
    """5-fold logistic-regression accuracy (features standardised; PCA(256) above PCA_ABOVE dimensions)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if x.shape[1] > PCA_ABOVE:
        x = PCA(256, random_state=0).fit_transform(x)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return float(cross_val_score(probe, x, truth, cv=5).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general", help="model file or shipped name")
    parser.add_argument("--data", default="benchmarks/data/protocol.h5", help="labelled set (protocol.py's)")
    parser.add_argument("--out", required=True, help="JSON results")
    args = parser.parse_args()
    from deepfinder_unsup.io.dataset import read_dataset

    data = read_dataset(args.data)
    results = {"model": args.model, "data": args.data, "layers": {}}
    for name, x in layer_vectors(args.model, data.subtomograms).items():
        results["layers"][name] = {"dims": int(x.shape[1]), "probe": round(probe_accuracy(x, data.labels), 4)}
        print(name, results["layers"][name], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
