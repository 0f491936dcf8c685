"""What bounds ``adapt --method neighbours``: how pure the neighbourhoods it pulls each pick towards are.

Labels are used only to score. For each design set: the unadapted model's four-view unit features; for K and
the one-way weight (``adapt.neighbour_targets``), the weighted share of a pick's K nearest neighbours that are
its own class (purity) and the V-measure of k-means at the true k on the targets themselves (each pick replaced
by its neighbours' weighted mean: one step of what adapt converges towards). ``--profile`` also appends each
pick's radially averaged density profile (a pose-free second view) to the features at the given weights.
``--posterior-scales`` also scores the model's class posteriors over its training classes (softmax of the
cosines to the class directions at each scale, compared by the Hellinger distance: the square roots are unit
vectors) as the space the neighbours are found in: "which known structures a pick looks like".
``--second-models`` also scores the neighbourhoods found in another model's four-view features, alone and
joined to the first's (both unit, side by side): purer together if the two models err on different picks.
``--rerank K1`` also scores neighbours found by k-reciprocal re-ranking (Zhong et al. 2017, person
re-identification): a pick's neighbours are those whose own K1-reciprocal neighbourhoods overlap its own (Jaccard
distance, mixed with the cosine distance at lambda 0.3), which counts shared context rather than one distance.

    python benchmarks/neighbour_purity.py --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def radial_profiles(volumes: np.ndarray, radii: int) -> np.ndarray:
    """Mean density in 1-voxel shells about the box centre, radii 1 .. ``radii`` - 1, per volume."""
    box = volumes.shape[1]
    centre = (box - 1) / 2
    z, y, x = np.indices((box, box, box))
    shell = np.sqrt((z - centre) ** 2 + (y - centre) ** 2 + (x - centre) ** 2).round().astype(int)
    return np.stack([volumes[:, shell == r].mean(axis=1) for r in range(1, radii)], axis=1)


def nearest(unit: np.ndarray, k: int) -> np.ndarray:
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argpartition(-similarity, k - 1, axis=1)[:, :k]


def purity(unit: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of each pick's ``k`` nearest neighbours (cosine) of its own class, averaged over picks."""
    return float((truth[nearest(unit, k)] == truth[:, None]).mean())


def weighted_purity(unit: np.ndarray, truth: np.ndarray, k: int, one_way_weight: float) -> float:
    """As ``adapt.neighbour_targets`` weighs them: mutual neighbours 1, one-way ones ``one_way_weight``."""
    near = nearest(unit, k)
    is_neighbour = np.zeros((len(unit), len(unit)), bool)
    np.put_along_axis(is_neighbour, near, True, axis=1)
    weights = np.where(np.take_along_axis(is_neighbour.T, near, axis=1), 1.0, one_way_weight)
    same = truth[near] == truth[:, None]
    return float(((weights * same).sum(axis=1) / weights.sum(axis=1)).mean())


def reciprocal_sets(near: np.ndarray) -> list[np.ndarray]:
    """For each pick, the picks among its nearest (rows of ``near``) that count it among their own nearest."""
    n = len(near)
    is_near = np.zeros((n, n), bool)
    np.put_along_axis(is_near, near, True, axis=1)
    mutual = is_near & is_near.T
    return [np.flatnonzero(row) for row in mutual]


def rerank_distances(unit: np.ndarray, k1: int, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. 2017): (1 - lam) x the Jaccard distance between the picks'
    expanded k1-reciprocal sets (Gaussian-weighted, averaged over each pick's k2 nearest) + lam x the cosine
    distance. The diagonal is +inf."""
    n = len(unit)
    dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    order = np.argsort(dist, axis=1)  # column 0 is the pick itself
    r_full = reciprocal_sets(order[:, 1 : k1 + 1])
    r_half = reciprocal_sets(order[:, 1 : max(2, k1 // 2) + 1])
    weights = np.zeros((n, n))
    for i in range(n):
        expanded = set(r_full[i].tolist()) | {i}
        for j in r_full[i]:
            candidate = set(r_half[j].tolist()) | {int(j)}
            if len(candidate & expanded) > 2 / 3 * len(candidate):
                expanded |= candidate
        members = np.fromiter(expanded, int)
        weights[i, members] = np.exp(-dist[i, members])
        weights[i] /= weights[i].sum()
    if k2 > 1:
        weights = weights[order[:, :k2]].mean(axis=1)  # local query expansion
    overlap = np.stack([np.minimum(row, weights).sum(axis=1) for row in weights])
    jaccard = 1.0 - overlap / (2.0 - overlap)  # rows sum to 1: sum of max = 2 - sum of min
    final = (1.0 - lam) * jaccard + lam * dist
    np.fill_diagonal(final, np.inf)
    return final


def purity_by_distance(distance: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of each pick's ``k`` nearest by ``distance`` (diagonal +inf) of its own class."""
    near = np.argpartition(distance, k - 1, axis=1)[:, :k]
    return float((truth[near] == truth[:, None]).mean())


def class_directions(model: str) -> np.ndarray:
    """The unit class directions (32, C) of a cosine-output model (``CosineClassifier``'s kernel)."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model import classifier  # noqa: F401  (registers the package's layers)
    from deepfinder_unsup.model.classifier import OUTPUT_LAYER

    network = keras.models.load_model(resolve_model_path(model), compile=False)
    kernel = np.asarray(network.get_layer(OUTPUT_LAYER).get_weights()[0], np.float64)
    return kernel / np.linalg.norm(kernel, axis=0, keepdims=True)


def posterior_roots(unit: np.ndarray, directions: np.ndarray, scale: float) -> np.ndarray:
    """Square roots of the softmax of ``scale`` x the cosines to the class directions (unit rows)."""
    logits = scale * unit @ directions
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.sqrt(p / p.sum(axis=1, keepdims=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="general")
    parser.add_argument("--design", nargs="+", required=True)
    parser.add_argument("--neighbours", type=int, nargs="+", default=[5, 30, 60])
    parser.add_argument("--one-way-weights", type=float, nargs="+", default=[1.0, 0.3, 0.1])
    parser.add_argument("--profile", type=float, nargs="*", default=[0.3, 0.5, 1.0], help="profile weights")
    parser.add_argument("--posterior-scales", type=float, nargs="*", default=[], help="e.g. 4 8 16 32")
    parser.add_argument("--second-models", nargs="*", default=[], help="e.g. shrec21 or a .keras file")
    parser.add_argument("--rerank", type=int, nargs="*", default=[], help="k1 of k-reciprocal re-ranking, e.g. 10 20")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from deepfinder_unsup.adapt import neighbour_targets
    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.extract import load_dataset_subtomograms
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.volume import normalise

    def v_at_true_k(features: np.ndarray, truth: np.ndarray) -> float:
        labels = KMeans(len(set(truth.tolist())), n_init=10, random_state=0).fit_predict(features)
        return round(float(v_measure_score(truth, labels)), 4)

    results: dict = {"model": args.model, "design": {}}
    directions = class_directions(args.model) if args.posterior_scales else None
    for path in args.design:
        vols, _ = load_dataset_subtomograms(path, 40, 10.0)
        truth = np.asarray(read_dataset(path).labels)
        unit = normalise_features(Embedder(args.model, tta=True).fit().transform(vols).astype(np.float64))
        rows = []
        for k in args.neighbours:
            for w in args.one_way_weights:
                targets = normalise_features(neighbour_targets(unit, k, w).astype(np.float64))
                rows.append(
                    {
                        "neighbours": k,
                        "one_way_weight": w,
                        "purity": round(weighted_purity(unit, truth, k, w), 4),
                        "v_targets": v_at_true_k(targets, truth),
                    }
                )
                print(path, rows[-1], flush=True)
        profile = radial_profiles(normalise(vols), 17)
        profile = normalise_features((profile - profile.mean(0)) / profile.std(0))
        with_profile = [
            {
                "profile_weight": w,
                "purity_k30": round(purity(normalise_features(np.c_[unit, w * profile]), truth, 30), 4),
            }
            for w in args.profile
        ]
        posteriors = [
            {
                "scale": s,
                "purity_k30": round(purity(roots, truth, 30), 4),
                "v": v_at_true_k(roots, truth),
            }
            for s in args.posterior_scales
            for roots in [posterior_roots(unit, directions, s)]
        ]
        joined = []
        for second in args.second_models:
            other = normalise_features(Embedder(second, tta=True).fit().transform(vols).astype(np.float64))
            both = normalise_features(np.c_[unit, other])
            joined.append(
                {
                    "second_model": second,
                    "purity_k30_second": round(purity(other, truth, 30), 4),
                    "purity_k30_joined": round(purity(both, truth, 30), 4),
                    "v_second": v_at_true_k(other, truth),
                    "v_joined": v_at_true_k(both, truth),
                }
            )
            print(path, joined[-1], flush=True)
        reranked = []
        for k1 in args.rerank:
            distance = rerank_distances(unit, k1)
            reranked.append(
                {
                    "k1": k1,
                    "purity_k5": round(purity_by_distance(distance, truth, 5), 4),
                    "purity_k30": round(purity_by_distance(distance, truth, 30), 4),
                }
            )
            print(path, reranked[-1], flush=True)
        results["design"][path] = {
            "reranked": reranked,
            "purity_k5": round(purity(unit, truth, 5), 4),
            "second_models": joined,
            "v_features": v_at_true_k(unit, truth),
            "purity_k30": round(purity(unit, truth, 30), 4),
            "class_posteriors": posteriors,
            "targets": rows,
            "profile_only_purity_k30": round(purity(profile, truth, 30), 4),
            "with_profile": with_profile,
        }
        print(path, {k: v for k, v in results["design"][path].items() if k != "targets"}, flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
