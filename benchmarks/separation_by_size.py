"""How well the features tell apart structures of each size: per-class scores of a model on the validation
protocol's 200 never-trained procedural structures, grouped by mass (no new simulation; the features come from
paired_bootstrap.py's cache when it holds them).

    python benchmarks/separation_by_size.py --model general --data benchmarks/data/protocol.h5 --cache runs/cache

Per class: the share of its particles whose nearest neighbour (cosine, the other particles of the set) is of the
same class, and the recall of a 5-fold logistic-regression probe on all 207 classes; averaged over mass quartiles
of the procedural classes (their mass from the generator), beside the real held-out structures.

``--model true_pose`` scores, in place of a model's features, the raw voxels moved and rotated back by each
particle's TRUE centre and pose (information_limit.py's oracle), PCA(32), unit length: what the same readouts give
where pose invariance is not the question, so a size group's gap between a model and the oracle is what the model
loses to the pose.

    python benchmarks/separation_by_size.py --model true_pose --data benchmarks/data/protocol.h5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def nearest_neighbour_same_class(features: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per particle: is its nearest other particle (cosine, unit features) of its class?"""
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    return truth[similarity.argmax(axis=1)] == truth


def probe_recall(features: np.ndarray, truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per particle: does a 5-fold logistic-regression probe give its class?"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_predict(probe, features, truth, cv=folds) == truth


def true_pose_features(data) -> np.ndarray:
    """The pose oracle's features: true-pose aligned raw voxels, PCA(32), unit rows."""
    from information_limit import aligned_to_template_frame
    from sklearn.decomposition import PCA

    features = PCA(32, random_state=0).fit_transform(aligned_to_template_frame(data))
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def model_features(model: str, data_path: str, data, cache: Path | None) -> np.ndarray:
    """A model's embeddings of the set (one view, float32: paired_bootstrap.py's defaults), normalised."""
    from paired_bootstrap import cached_features

    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder

    keep = np.ones(len(data.labels), bool)
    embedder = Embedder(model, precision="float32", tta=False).fit()
    return normalise_features(cached_features(embedder, data_path, data.subtomograms, keep, cache))


def class_rows(data, nn: np.ndarray, probe: np.ndarray) -> list[dict]:
    """Per class: its share of nearest neighbours of the same class, its probe recall, and (procedural classes) its
    mass from the generator."""
    from deepfinder_unsup.simulate.procedural import ProceduralStructure

    truth = np.asarray(data.labels)
    rows = []
    for label, name in sorted(data.class_names.items()):
        mine = truth == label
        row = {"class": name, "nn_same": float(nn[mine].mean()), "probe_recall": float(probe[mine].mean())}
        if name.startswith("proc"):
            row["mass_kda"] = float(ProceduralStructure(int(name[4:])).molecule.mass_kda)
        rows.append(row)
    return rows


def mass_groups(rows: list[dict]) -> list[dict]:
    """The procedural classes' rows averaged over their mass quartiles."""
    procedural = [r for r in rows if "mass_kda" in r]
    edges = np.quantile([r["mass_kda"] for r in procedural], [0, 0.25, 0.5, 0.75, 1])
    groups = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        members = [r for r in procedural if lo <= r["mass_kda"] <= hi]
        groups.append(
            {
                "mass_kda": [round(float(lo)), round(float(hi))],
                "classes": len(members),
                "nn_same": round(float(np.mean([r["nn_same"] for r in members])), 3),
                "probe_recall": round(float(np.mean([r["probe_recall"] for r in members])), 3),
            }
        )
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="general", help="a model name or file, or true_pose (the pose oracle)")
    parser.add_argument("--data", default="benchmarks/data/protocol.h5")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from deepfinder_unsup.io.dataset import read_dataset

    data = read_dataset(args.data)
    truth = np.asarray(data.labels)
    if args.model == "true_pose":
        features = true_pose_features(data)
    else:
        features = model_features(args.model, args.data, data, args.cache)
    nn, probe = nearest_neighbour_same_class(features, truth), probe_recall(features, truth)
    rows = class_rows(data, nn, probe)
    groups = mass_groups(rows)
    others = {r["class"]: {k: round(v, 3) for k, v in r.items() if k != "class"} for r in rows if "mass_kda" not in r}
    result = {"model": args.model, "data": args.data, "by_mass": groups, "others": others, "classes": rows}
    for g in groups:
        print(f"{g['mass_kda'][0]:>6}-{g['mass_kda'][1]:<6} kDa  {g['classes']:3d} classes  nearest neighbour "
              f"{g['nn_same']:.3f}  probe {g['probe_recall']:.3f}")  # fmt: skip
    for name, r in others.items():
        print(f"{name:>20}  nearest neighbour {r['nn_same']:.3f}  probe {r['probe_recall']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
