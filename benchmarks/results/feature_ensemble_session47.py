"""Session 47: do two checkpoints' features together separate the protocol's 207 classes better than either alone?

    python benchmarks/results/feature_ensemble_session47.py benchmarks/data/protocol.h5 general \
        benchmarks/checkpoints/wide_session46.keras          # (git show a155a21:... for the second)

One view, float32, each model's features L2-normalised; k-means at the true k (mean of three seeds) on each, on the
concatenation, on PCA(32) of the concatenation, and on their sum. Output: feature_ensemble_session47.log.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

sys.path.insert(0, "benchmarks")
from paired_bootstrap import cached_features, kmeans_v  # noqa: E402

from deepfinder_unsup._quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
from deepfinder_unsup.cluster import normalise_features  # noqa: E402
from deepfinder_unsup.embed import Embedder  # noqa: E402
from deepfinder_unsup.io.dataset import read_dataset  # noqa: E402

path, models = sys.argv[1], sys.argv[2:]
data = read_dataset(path)
truth = np.asarray(data.labels)
keep = np.ones(len(truth), bool)
features = [
    normalise_features(
        cached_features(Embedder(m, tta=False).fit(), path, data.subtomograms, keep, Path("runs/cache")).astype(float)
    )
    for m in models
]


def report(name: str, f: np.ndarray) -> None:
    print(name, "V", round(float(np.mean([kmeans_v(f, truth, s, 4) for s in range(3)])), 4), flush=True)


for m, f in zip(models, features):
    report(m, f)
joined = np.hstack(features)
report("concat", normalise_features(joined))
report("concat-pca32", normalise_features(PCA(32, random_state=0).fit_transform(joined)))
report("mean", normalise_features(sum(features)))
