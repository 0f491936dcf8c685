"""Where a protocol domain's V-measure is lost: which classes the features mix (issue #13).

    python benchmarks/domain_confusion.py --model general --domain crowded --out confusion.json

For one domain of ``adaptation_protocol.py`` and one model (one view, float32): the k-means contingency at the
true k (L2-normalised features, as the protocol scores), the 5-fold linear probe's per-class recall and
confusion, and for each ``NAME@membrane`` class the V-measure of the same clustering with bound and free copies
counted as one class: how much of the loss is the bound/free pair (which the missing wedge can hide) and how
much the other classes. Also the V-measure an otherwise perfect clustering would reach if bound and free copies
could not be told apart at all (the ceiling that physics leaves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import adaptation_protocol as ap
import numpy as np


def contingency(truth: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    """Counts, rows the true classes (sorted), columns the predicted labels (sorted)."""
    return [[int(np.sum((truth == t) & (predicted == p))) for p in np.unique(predicted)] for t in np.unique(truth)]


def bound_free_pairs(names: dict[int, str]) -> list[tuple[int, int]]:
    """(bound label, free label) for every ``NAME@membrane`` class whose free NAME is in the set too."""
    by_name = {name: label for label, name in names.items()}
    return [
        (label, by_name[name.split("@")[0]])
        for label, name in names.items()
        if name.endswith("@membrane") and name.split("@")[0] in by_name
    ]


def analyse(features: np.ndarray, truth: np.ndarray, names: dict[int, str]) -> dict:
    """The contingency, the probe's recall and the bound/free share of the loss (see the module's doc)."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix, v_measure_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepfinder_unsup.cluster import normalise_features

    classes = np.unique(truth)
    predicted = KMeans(len(classes), n_init=4, random_state=0).fit_predict(normalise_features(features.astype(float)))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe_confusion = confusion_matrix(truth, cross_val_predict(probe, features, truth, cv=5), labels=classes)
    out = {
        "classes": [names[int(c)] for c in classes],
        "v_true_k": round(float(v_measure_score(truth, predicted)), 4),
        "kmeans_contingency": contingency(truth, predicted),
        "probe_recall": {
            names[int(c)]: round(float(probe_confusion[i, i] / probe_confusion[i].sum()), 3)
            for i, c in enumerate(classes)
        },
        "probe_confusion": probe_confusion.tolist(),
        "bound_free": [],
    }
    for bound, free in bound_free_pairs(names):
        merged = np.where(truth == bound, free, truth)  # as labels: the pair as one; as a clustering: blind to it
        out["bound_free"].append(
            {
                "pair": [names[bound], names[free]],
                "v_true_k_pair_counted_as_one": round(float(v_measure_score(merged, predicted)), 4),
                "v_ceiling_if_pair_inseparable": round(float(v_measure_score(truth, merged)), 4),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="general", help="model file or shipped name")
    parser.add_argument("--domain", choices=sorted(ap.DOMAINS), default="crowded")
    parser.add_argument("--data", type=Path, default=ap.HERE / "data" / "domains")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from deepfinder_unsup.embed import Embedder

    volumes, truth, names, _ = ap.domain_data(args.domain, args.data, args.seed)
    features = Embedder(args.model, tta=False).transform(volumes)
    result = {"model": args.model, "domain": args.domain, "n": len(truth), **analyse(features, truth, names)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
