"""Own SHREC'21 (trained classes, the training microscope): is the network short of fitting them, or only its features?

    python benchmarks/results/shrec21_classifier_vs_features_session60.py MODEL runs/val_shrec21_big/dataset.h5 > OUT

The model's own class output restricted to the 13 structures' columns (its trained classifier: CosFace cosines,
argmax) against a 5-fold logistic probe and k-means (k = 14, 3 seeds) on the L2-normalised 32-D embedding, over all
boxes and by thirds of the recorded per-box SNR. The negatives are scored by the probe and k-means only: their
column is one class among 595 drawn about once in 900 labelled draws (``class_draw_weights``), not a trained
classifier of theirs (session 60).
"""

import json
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import v_measure_score
from sklearn.model_selection import cross_val_predict

from deepfinder_unsup._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import keras  # noqa: E402

from deepfinder_unsup.embed import resolve_model_path  # noqa: E402
from deepfinder_unsup.io.dataset import read_dataset  # noqa: E402
from deepfinder_unsup.model.card import load_model  # noqa: E402
from deepfinder_unsup.volume import normalise  # noqa: E402

model_path, data_path = resolve_model_path(sys.argv[1]), sys.argv[2]  # a file or a shipped name
d = read_dataset(data_path)
model, card = load_model(model_path)
sub = keras.Model(model.inputs, [model.get_layer("embedding").output, model.get_layer("class_output").output])
embs, logits = [], []
for i in range(0, len(d.subtomograms), 64):
    e, c = sub(normalise(d.subtomograms[i : i + 64])[..., None], training=False)
    embs.append(np.asarray(e)), logits.append(np.asarray(c))
emb, out = np.concatenate(embs), np.concatenate(logits)
y = d.labels
names = d.class_names
card_index = {v: int(k) for k, v in card["classes"].items()}
structures = [lab for lab in sorted(names) if lab != 0]
cols = [card_index[names[lab]] for lab in structures]
pred13 = np.array(structures)[np.argmax(out[:, cols], axis=1)]
z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
probe = cross_val_predict(LogisticRegression(max_iter=3000, C=1.0), z, y, cv=5)
km = [KMeans(14, n_init=10, random_state=s).fit_predict(z) for s in range(3)]
snr = np.array([o["snr"] for o in d.objl])
res = {"model": str(model_path), "all": {}}


def scores(m):
    s = m & (y != 0)
    return {
        "n": int(m.sum()),
        "classifier_13way_acc_structures": float(np.mean(pred13[s] == y[s])),
        "probe_acc_structures": float(np.mean(probe[s] == y[s])),
        "probe_acc": float(np.mean(probe[m] == y[m])),
        "kmeans_v": float(np.mean([v_measure_score(y[m], k[m]) for k in km])),
    }


res["all"] = scores(np.ones(len(y), bool))
negatives = y == 0  # their own column: its cosine, and how often it is the argmax over all 595
res["negatives"] = {
    "mean_cosine_to_their_column": float(out[negatives, card_index["negative"]].mean()),
    "share_called_negative_of_all_classes": float(np.mean(out[negatives].argmax(1) == card_index["negative"])),
}
edges = np.quantile(snr, [0, 1 / 3, 2 / 3, 1])
res["by_snr_tercile"] = {
    f"{edges[i]:.3f}-{edges[i + 1]:.3f}": scores((snr >= edges[i]) & (snr <= edges[i + 1])) for i in range(3)
}
res["by_class"] = {
    names[c]: {
        "classifier": float(np.mean(pred13[y == c] == c)) if c else None,
        "probe": float(np.mean(probe[y == c] == c)),
    }
    for c in sorted(names)
}
print(json.dumps(res, indent=1))
