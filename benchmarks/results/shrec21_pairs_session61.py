"""Own SHREC'21: can the features tell the pairs the classifier confuses apart, and can the pose oracle?

    python benchmarks/results/shrec21_pairs_session61.py MODEL [--data runs/val_shrec21_big/dataset.h5] > OUT

For pairs of the 13 structures (the two small pairs the class output swaps wholesale between epochs, and pairs of
medium and large ones), a 5-fold two-class logistic probe by thirds of the recorded per-box SNR: on the model's
L2-normalised 32-D embedding (one view), and on the pose-and-polarity oracle's features (raw voxels moved back by
the true centre, pose and contrast polarity, PCA(32) fitted on the whole set, unit rows; session 57). 0.5 is
chance. A pair the oracle separates and the features do not is lost by the network (in any pose, as
shrec21_fixed_pose_session61.py found: not invariance but detail); a pair neither separates is not in these
sub-tomograms at this resolution (or not in 32 global principal components).
"""

import argparse
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results")
from protocol_true_pose_session57 import true_pose_and_polarity_features  # noqa: E402

from deepfinder_unsup._quiet import import_tensorflow_quietly  # noqa: E402

PAIRS = [("1s3x", "3qm1"), ("3gl1", "3h84"), ("1s3x", "3h84"), ("1qvr", "3cf3"), ("1bxn", "1qvr"), ("1u6g", "3d2f")]
PAIRS += [("4cr2", "5mrc")]


def embedding(model_name: str, data) -> np.ndarray:
    """The model's embedding layer, one view, unit rows."""
    import_tensorflow_quietly()
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.volume import normalise

    model, _ = load_model(resolve_model_path(model_name))
    sub = keras.Model(model.inputs, model.get_layer("embedding").output)
    vols = data.subtomograms
    emb = np.concatenate(
        [np.asarray(sub(normalise(vols[i : i + 64])[..., None], training=False)) for i in range(0, len(vols), 64)]
    )
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def pair_probes(features: np.ndarray, labels: np.ndarray, snr: np.ndarray, index: dict) -> dict:
    """Per pair: the two-class probe's 5-fold accuracy in each third of SNR."""
    cuts = np.quantile(snr, [1 / 3, 2 / 3])
    bounds = [(-np.inf, cuts[0]), (cuts[0], cuts[1]), (cuts[1], np.inf)]
    out = {}
    for a, b in PAIRS:
        accs = []
        for lo, hi in bounds:
            m = np.isin(labels, [index[a], index[b]]) & (snr > lo) & (snr <= hi)
            probe = LogisticRegression(max_iter=3000)
            accs.append(round(float(cross_val_score(probe, features[m], labels[m], cv=5).mean()), 3))
        out[f"{a}/{b}"] = accs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="runs/val_shrec21_big/dataset.h5")
    args = parser.parse_args()
    from deepfinder_unsup.io.dataset import read_dataset

    data = read_dataset(args.data)
    index = {name: label for label, name in data.class_names.items()}
    snr = np.array([o["snr"] for o in data.objl])
    result = {
        "model": args.model,
        "data": args.data,
        "snr_thirds": [round(float(x), 3) for x in np.quantile(snr, [0, 1 / 3, 2 / 3, 1])],
        "features": pair_probes(embedding(args.model, data), data.labels, snr, index),
        "pose_polarity_oracle": pair_probes(true_pose_and_polarity_features(data), data.labels, snr, index),
    }
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
