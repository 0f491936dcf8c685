"""Rare structures: label-free rules that can give a 1-3 % structure its own cluster (the co-association of
many over-clusterings, the default of ``cluster --rare``; HDBSCAN; over-clustering then merging), and the check
that one did."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from ..io.files import InputError
from .choose_k import select_k
from .sweep import sweep_k

COASSOCIATION_KS = (10, 15, 20, 25, 30)  # k-means runs of the co-association rule (more clusters than classes)
COASSOCIATION_SEEDS = 2  # runs per k
COASSOCIATION_CUT = 0.8  # average-linkage cut on 1 - co-association (chosen on design sets: docs/adaptation.md)
COASSOCIATION_MERGE = 1.5  # then groups whose centres are closer than 1.5x their mean spread are joined
COASSOCIATION_MAX_PICKS = 4000  # the co-association matrix is N^2: beyond this, fit on a sample, assign the rest


def overcluster_merge(features: np.ndarray, n_over: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means at ``n_over`` (more clusters than classes, so a rare structure can get one of its own), then the
    centroids merged by average linkage on cosine distance, cut at the largest gap between merge heights.

    Returns (0-based labels, the linkage matrix of the centroids: the report's dendrogram)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n_over = int(min(n_over, max(2, len(features) // 5)))
    km = KMeans(n_over, n_init=4, random_state=seed).fit(features)
    centroids = km.cluster_centers_ / np.maximum(np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12)
    tree = linkage(centroids, method="average", metric="cosine")
    heights = np.concatenate([[0.0], tree[:, 2]])
    cut = int(np.argmax(np.diff(heights)))  # merges up to this one join the same structure
    threshold = (heights[cut] + heights[cut + 1]) / 2
    merged = fcluster(tree, threshold, criterion="distance") - 1
    return merged[km.labels_], tree


def default_min_cluster_size(n: int) -> int:
    """The smallest cluster the rare-structure rules keep: 1 % of the picks, at least 5."""
    return max(5, n // 100)


def coassociation_labels(
    features: np.ndarray,
    min_cluster_size: int | None = None,
    seed: int = 0,
    ks: Sequence[int] = COASSOCIATION_KS,
    cut: float = COASSOCIATION_CUT,
    max_picks: int = COASSOCIATION_MAX_PICKS,
) -> np.ndarray:
    """Evidence accumulation (Fred & Jain 2005): k-means at every k of ``ks`` (more clusters than structures)
    and ``COASSOCIATION_SEEDS`` seeds; two picks that share a cluster in most runs are the same structure.
    The picks are grouped by average linkage on 1 - (fraction of runs they share), cut at ``cut``; groups
    smaller than ``min_cluster_size`` (default 1 %, at least 5) are marked -1. A small structure that every
    over-clustering keeps apart stays one group; a large one split differently by each run is joined again,
    and where it is not (a round cloud cut anew by every run), ``merge_close_groups`` joins its pieces.

    Returns 0-based labels, -1 for picks in no group of the minimum size. Beyond ``max_picks`` the rule runs
    on a random sample and every pick joins the group of the nearest sampled pick's group centre (cosine)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    features = np.asarray(features, np.float64)
    n = len(features)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, max_picks, replace=False)) if n > max_picks else np.arange(n)
    x = features[sample]
    runs = [int(k) for k in ks if k < len(x)] or [max(2, len(x) // 2)]
    together = np.zeros((len(x), len(x)), np.float32)
    for k in runs:
        for s in range(COASSOCIATION_SEEDS):
            labels = KMeans(k, n_init=1, random_state=seed + 1000 * s + k).fit_predict(x)
            together += labels[:, None] == labels[None, :]
    distance = 1.0 - together / (len(runs) * COASSOCIATION_SEEDS)
    np.fill_diagonal(distance, 0.0)
    groups = fcluster(linkage(squareform(distance, checks=False), "average"), cut, "distance") - 1
    groups = merge_close_groups(x, groups, COASSOCIATION_MERGE)
    if n > max_picks:
        groups = _assign_to_nearest_group(features, x, groups)
    return _small_groups_unassigned(groups, min_cluster_size or default_min_cluster_size(n))


def merge_close_groups(features: np.ndarray, groups: np.ndarray, ratio: float) -> np.ndarray:
    """Join the two groups whose centres are nearest relative to their spread (mean distance of members to
    their centre), again and again while that distance is under ``ratio`` times the pair's mean spread."""
    groups = np.unique(groups, return_inverse=True)[1]
    centres = np.stack([features[groups == g].mean(0) for g in range(groups.max() + 1)])
    spread = np.array([np.linalg.norm(features[groups == g] - c, axis=1).mean() for g, c in enumerate(centres)])
    alive = list(range(len(centres)))
    while len(alive) > 1:
        c, r = centres[alive], spread[alive]
        ratios = np.linalg.norm(c[:, None] - c[None], axis=2) / np.maximum((r[:, None] + r[None]) / 2, 1e-12)
        np.fill_diagonal(ratios, np.inf)
        i, j = np.unravel_index(np.argmin(ratios), ratios.shape)
        if ratios[i, j] >= ratio:
            break
        a, b = alive[i], alive[j]
        groups[groups == b] = a
        centres[a] = features[groups == a].mean(0)
        spread[a] = np.linalg.norm(features[groups == a] - centres[a], axis=1).mean()
        alive.remove(b)
    return np.unique(groups, return_inverse=True)[1]  # numbered 0.. without the gaps of merged groups


def _assign_to_nearest_group(features: np.ndarray, sample: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each pick's group: that of the nearest group centre (cosine) of the sample's groups."""
    centres = np.stack([sample[groups == g].mean(0) for g in range(groups.max() + 1)])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return np.argmax(unit @ centres.T, axis=1)


def _small_groups_unassigned(groups: np.ndarray, min_size: int) -> np.ndarray:
    """Groups renumbered 0.. by decreasing size; those under ``min_size`` picks become -1."""
    ids, counts = np.unique(groups, return_counts=True)
    out = np.full(len(groups), -1)
    kept = ids[counts >= min_size][np.argsort(-counts[counts >= min_size], kind="stable")]
    for new, old in enumerate(kept):
        out[groups == old] = new
    return out


def hdbscan_labels(features: np.ndarray, min_cluster_size: int | None = None) -> np.ndarray:
    """HDBSCAN (scikit-learn): density-based, no k; a cluster may be as small as ``min_cluster_size`` (default
    max(5, 1 % of the picks)); -1 marks picks in no dense region. ``copy=True`` says what scikit-learn 1.10 will
    do by default (the caller's features are never written to), so users see no FutureWarning."""
    from sklearn.cluster import HDBSCAN

    size = int(min_cluster_size or default_min_cluster_size(len(features)))
    return HDBSCAN(min_cluster_size=size, copy=True).fit_predict(features)


def kmeans_selected_k(features: np.ndarray, ks: Sequence[int] = range(2, 16), seed: int = 0) -> np.ndarray:
    """k-means at the label-free k of ``select_k`` (what ``cluster`` chooses by default), 0-based labels."""
    ks = [k for k in ks if k < len(features)]
    per_k, assignments = sweep_k(features, ks, seed=seed)
    return assignments[select_k(per_k)] - 1


RARE_RULES = {
    "kmeans_selected_k": kmeans_selected_k,
    "overcluster_merge": lambda f: overcluster_merge(f)[0],
    "hdbscan": hdbscan_labels,
    "coassociation": coassociation_labels,
}
RARE_METHODS = {  # what ``cluster --rare`` offers (the first is the default), as the report names them
    "coassociation": f"the co-association of {len(COASSOCIATION_KS) * COASSOCIATION_SEEDS} over-clusterings",
    "hdbscan": "HDBSCAN",
}


def rare_analysis(
    features: np.ndarray, min_cluster_size: int | None = None, seed: int = 0, method: str = "coassociation"
) -> dict:
    """What ``cluster --rare`` adds: clusters that may be as small as ``min_cluster_size`` (1-based, 0 = in no
    cluster) by ``method`` (``coassociation_labels`` or ``hdbscan_labels``), and the over-clustered centroids'
    tree with each group's size (the report's dendrogram)."""
    if method not in RARE_METHODS:
        raise InputError(f"unknown rare-structure method {method!r}; choose from {', '.join(RARE_METHODS)}")
    if method == "hdbscan":
        labels = hdbscan_labels(features, min_cluster_size)
    else:
        labels = coassociation_labels(features, min_cluster_size, seed)
    over = KMeans(int(min(30, max(2, len(features) // 5))), n_init=4, random_state=seed).fit(features)
    unit = over.cluster_centers_ / np.maximum(np.linalg.norm(over.cluster_centers_, axis=1, keepdims=True), 1e-12)
    from scipy.cluster.hierarchy import linkage

    found = sorted(set(labels.tolist()) - {-1})
    return {
        "labels": labels + 1,
        "tree": linkage(unit, method="average", metric="cosine"),
        "group_sizes": np.bincount(over.labels_, minlength=len(unit)),
        "summary": {
            "method": method,
            "min_cluster_size": int(min_cluster_size or default_min_cluster_size(len(features))),
            "n_clusters": len(found),
            "unassigned": int(np.sum(labels == -1)),
            "sizes": {int(c) + 1: int(np.sum(labels == c)) for c in found},
        },
    }


def rare_class_found(labels: np.ndarray, is_rare: np.ndarray) -> bool:
    """Whether one cluster holds at least half of the rare picks and is at least half rare (-1: no cluster)."""
    is_rare = np.asarray(is_rare, bool)
    for c in set(np.asarray(labels)[is_rare].tolist()) - {-1}:
        members = labels == c
        together = np.sum(members & is_rare)
        if together >= 0.5 * is_rare.sum() and together >= 0.5 * members.sum():
            return True
    return False
