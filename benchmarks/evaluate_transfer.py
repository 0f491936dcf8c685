"""Cluster quality of embeddings on a labelled data set, against the raw-voxel PCA baseline.

For each model: embed the data set, k-means at k = number of classes (10 restarts, seed 0), V-measure (and
homogeneity / completeness / ARI); the same for PCA(32) of the raw normalised voxels. Used for the held-out
class validation in docs/model_card.md:

    python benchmarks/evaluate_transfer.py --dataset transfer.h5 --models runs/head_flatten/model.keras ...
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from deepfinder_unsup._quiet import import_tensorflow_quietly
from deepfinder_unsup.cluster import truth_scores
from deepfinder_unsup.extract import normalise
from deepfinder_unsup.io.dataset import read_dataset


def kmeans_scores(features: np.ndarray, truth: np.ndarray) -> dict:
    k = len(np.unique(truth))
    labels = KMeans(k, n_init=10, random_state=0).fit_predict(features)
    return {key: round(v, 4) for key, v in truth_scores(truth, labels).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--pretrained", action="store_true", help="also evaluate the shipped model")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    args = parser.parse_args()
    ds = read_dataset(args.dataset)
    truth = ds.labels
    x = normalise(ds.subtomograms)
    results = {"dataset": args.dataset, "n": int(len(truth)), "k": int(len(np.unique(truth)))}
    results["pca32_raw_voxels"] = kmeans_scores(PCA(32, random_state=0).fit_transform(x.reshape(len(x), -1)), truth)
    print("PCA(32) raw voxels", results["pca32_raw_voxels"], flush=True)
    import_tensorflow_quietly()
    from deepfinder_unsup.embed import Embedder

    models = list(args.models) + ([None] if args.pretrained else [])
    for path in models:
        for precision in args.precision:
            t0 = time.time()
            emb = Embedder(path, precision=precision, tta=False).fit().transform(x)
            scores = kmeans_scores(emb, truth)
            name = f"{path or 'pretrained'} [{precision}]"
            results[name] = {**scores, "embed_seconds": round(time.time() - t0, 1)}
            print(name, scores, flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
