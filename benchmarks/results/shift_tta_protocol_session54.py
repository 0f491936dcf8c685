"""Session 54: do one-voxel and two-voxel shifts (np.roll along z, y, x), alone or with --tta's four wedge views,
raise V / the probe on the protocol's never-trained structures? (benchmarks/tta_views_study.py asked it on design
sets in session 31.) N_CLASSES of the protocol's 207 drawn with seed 0, all their particles, one thread.

    OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 python benchmarks/results/shift_tta_protocol_session54.py \
        MODEL 60 OUT.json
"""

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import v_measure_score
from sklearn.model_selection import cross_val_score

from deepfinder_unsup.embed import Embedder
from deepfinder_unsup.io.dataset import read_dataset

model, n_classes, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ds = read_dataset("benchmarks/data/protocol.h5")
rng = np.random.default_rng(0)
keep = np.sort(rng.choice(np.unique(ds.labels), n_classes, replace=False))
sel = np.isin(ds.labels, keep)
X, y = ds.subtomograms[sel], ds.labels[sel]
print(X.shape, flush=True)
one = Embedder(model, tta=False).fit()
four = Embedder(model, tta=True).fit()


def unit(e):
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def score(e):
    e = unit(e)
    v = np.mean([v_measure_score(y, KMeans(n_classes, n_init=4, random_state=s).fit_predict(e)) for s in range(3)])
    p = cross_val_score(LogisticRegression(max_iter=2000), e, y, cv=5).mean()
    return round(float(v), 4), round(float(p), 4)


shifts = [(0, 0, 0)] + [
    tuple(d * s if a == ax else 0 for a in range(3)) for ax in range(3) for s in (-1, 1) for d in (1,)
]
shifts2 = [tuple(2 * c for c in s) for s in shifts[1:]]
res = {}
t = time.time()
per_shift = {}
for s in shifts + shifts2:
    per_shift[s] = unit(one.transform(np.roll(X, s, axis=(1, 2, 3))))
    print(s, round(time.time() - t), flush=True)
res["one"] = score(per_shift[(0, 0, 0)])
res["shift1_7"] = score(sum(per_shift[s] for s in shifts))
res["shift2_7"] = score(per_shift[(0, 0, 0)] + sum(per_shift[s] for s in shifts2))
res["shift12_13"] = score(sum(per_shift.values()))
print(res, flush=True)
e4 = unit(four.transform(X))
res["wedge4"] = score(e4)
e4s = e4 + sum(unit(four.transform(np.roll(X, s, axis=(1, 2, 3)))) for s in shifts[1:])
res["wedge4_shift1"] = score(e4s)
print(res, flush=True)
json.dump(res, open(out, "w"), indent=1)
