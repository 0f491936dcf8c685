"""Where the negatives land among the protocol's real held-out six (2uv8, 6utj, 6pxm, 7n4y, 5tqq + negatives, 20 each):

    python benchmarks/results/real_six_negatives_session60.py MODEL > OUT.txt

k-means at k = 6 (2 seeds) on the L2-normalised features, one view and embed's four views (``--tta``): the
cross-table of class by cluster, and each class's centroid direction against the negatives' (cosine) with its
spread (mean cosine of its members to its own centroid). Session 60: the negatives are one labelled draw in about
900 in training; do they still form their own cluster? Labels only to score.
"""

import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import v_measure_score

from deepfinder_unsup.embed import Embedder
from deepfinder_unsup.io.dataset import read_dataset

d = read_dataset("benchmarks/data/protocol.h5")
names = d.class_names
keep = [k for k, v in names.items() if v in ("2uv8", "6utj", "6pxm", "7n4y", "5tqq", "negative")]
mask = np.isin(d.labels, keep)
x, y = d.subtomograms[mask], d.labels[mask]
classes = sorted(set(y))
for tta in (False, True):
    e = Embedder(sys.argv[1], tta=tta).transform(x)
    z = e / np.linalg.norm(e, axis=1, keepdims=True)
    print(f"views: {4 if tta else 1}; rows {[names[c] for c in classes]}, columns the clusters")
    for seed in range(2):
        p = KMeans(6, n_init=10, random_state=seed).fit_predict(z)
        print(f"  seed {seed}: V {v_measure_score(y, p):.3f}")
        print(np.array([[np.sum((y == c) & (p == q)) for q in range(6)] for c in classes]))
    neg = z[y == 0].mean(0)
    neg /= np.linalg.norm(neg)
    for c in classes:
        centre = z[y == c].mean(0)
        centre /= np.linalg.norm(centre)
        spread = float(np.mean(z[y == c] @ centre))
        print(f"  {names[c]}: centroid . negatives' {float(centre @ neg):.3f}, spread {spread:.3f}")
