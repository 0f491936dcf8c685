"""The k sweep: one clustering per k (k-means, GMM or Ward), its label-free and truth scores, and the checks
that the embeddings can be clustered at all."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from ..io.files import InputError
from .choose_k import graph_eigengaps

METHODS = ("kmeans", "gmm", "agglomerative")
SILHOUETTE_SAMPLE = 5000  # silhouette is O(N^2): computed on a fixed random subset beyond this size
AGGLOMERATIVE_MAX = 30_000  # Ward linkage holds pairwise distances: beyond this it is refused, not swapped to death
MINIBATCH_ABOVE = 50_000  # k-means on more particles runs mini-batch (scikit-learn's MiniBatchKMeans)
MAX_K_VALUES = 500  # one clustering per value: a longer sweep is a typo, not a plan


def parse_k_range(text: str) -> list[int]:
    """'2:15' -> [2..15] (inclusive), '3,5,8' -> [3, 5, 8], '7' -> [7]."""
    try:
        bounds = [int(v) for v in text.split(":")] if ":" in text else None
        ks = sorted({int(v) for v in text.split(",")}) if bounds is None else []
    except ValueError:
        raise InputError(f"--k {text[:40]!r}: expected a range like 2:15 or a list like 3,5,8") from None
    if bounds is not None:
        if len(bounds) != 2:
            raise InputError(f"--k {text[:40]!r}: expected a range like 2:15 or a list like 3,5,8")
        lo, hi = bounds
        if lo > hi:
            raise InputError(f"--k {text!r}: the range runs backwards; write {hi}:{lo}")
        if hi - lo + 1 > MAX_K_VALUES:
            raise InputError(f"--k {text!r}: {hi - lo + 1} values of k; at most {MAX_K_VALUES} in one sweep")
        ks = list(range(lo, hi + 1))
    if len(ks) > MAX_K_VALUES:
        raise InputError(f"--k: {len(ks)} values of k; at most {MAX_K_VALUES} in one sweep")
    if not ks or min(ks) < 2:
        raise InputError(f"--k {text!r}: k must be at least 2")
    return ks


def cluster_once(embeddings: np.ndarray, k: int, method: str = "kmeans", seed: int = 0):
    """Cluster labels (0-based) for one k, and the fitted scikit-learn estimator."""
    if method == "kmeans":
        if len(embeddings) > MINIBATCH_ABOVE:
            est = MiniBatchKMeans(
                n_clusters=k, n_init=3, batch_size=4096, max_no_improvement=20, random_state=seed
            ).fit(embeddings)
            return est.predict(embeddings), est
        est = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(embeddings)
        return est.labels_, est
    if method == "gmm":
        est = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, n_init=2, reg_covar=1e-4).fit(
            embeddings
        )
        return est.predict(embeddings), est
    if method == "agglomerative":
        if len(embeddings) > AGGLOMERATIVE_MAX:
            raise InputError(
                f"agglomerative clustering of {len(embeddings)} particles needs O(N^2) memory; "
                f"use kmeans or gmm beyond {AGGLOMERATIVE_MAX}"
            )
        est = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(embeddings)
        return est.labels_, est
    raise InputError(f"unknown clustering method {method!r}; choose from {', '.join(METHODS)}")


def label_free_scores(embeddings: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of one clustering."""
    if len(np.unique(labels)) < 2:
        return {"silhouette": float("nan"), "calinski_harabasz": float("nan"), "davies_bouldin": float("nan")}
    sample = min(len(labels), SILHOUETTE_SAMPLE)
    return {
        "silhouette": float(metrics.silhouette_score(embeddings, labels, sample_size=sample, random_state=seed)),
        "calinski_harabasz": float(metrics.calinski_harabasz_score(embeddings, labels)),
        "davies_bouldin": float(metrics.davies_bouldin_score(embeddings, labels)),
    }


def truth_scores(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Homogeneity, completeness, V-measure (scikit-learn), adjusted Rand index, normalised mutual information."""
    h, c, v = metrics.homogeneity_completeness_v_measure(truth, labels)
    return {
        "homogeneity": float(h),
        "completeness": float(c),
        "v_measure": float(v),
        "ari": float(metrics.adjusted_rand_score(truth, labels)),
        "nmi": float(metrics.normalized_mutual_info_score(truth, labels)),
    }


def sweep_k(
    embeddings: np.ndarray,
    ks: Sequence[int],
    method: str = "kmeans",
    truth: np.ndarray | None = None,
    seed: int = 0,
    where: str = "embeddings",
) -> tuple[list[dict], dict[int, np.ndarray]]:
    """Cluster for every k: (per-k score dicts, {k: 1-based cluster labels})."""
    embeddings = np.asarray(embeddings, np.float64)
    check_clusterable(embeddings, ks, where)
    gaps = graph_eigengaps(embeddings, ks, seed)
    per_k, assignments = [], {}
    for k in ks:
        labels, est = cluster_once(embeddings, k, method, seed)
        row = {"k": int(k), **label_free_scores(embeddings, labels, seed), "eigengap": gaps[int(k)]}
        if method == "gmm":
            row["bic"] = float(est.bic(embeddings))
        if method == "kmeans":
            row["inertia"] = float(est.inertia_)
        if truth is not None:
            row.update(truth_scores(truth, labels))
        per_k.append(row)
        assignments[int(k)] = np.asarray(labels) + 1
    return per_k, assignments


DEFAULT_K_RANGE = "2:15"


def default_ks(embeddings: np.ndarray) -> list[int]:
    """The default sweep, 2..15, cut to what the embeddings can give: k below the number of particles and at most
    the number of different embeddings (a small pick set still gets a sweep, not an error)."""
    n = len(embeddings)
    distinct = len(np.unique(np.asarray(embeddings), axis=0)) if n else 0
    return [k for k in parse_k_range(DEFAULT_K_RANGE) if k < n and k <= distinct]


def check_clusterable(embeddings: np.ndarray, ks: Sequence[int], where: str = "embeddings") -> None:
    """Refuse empty or non-finite embeddings, embeddings all the same, and k values that need more particles (or
    more different embeddings) than there are."""
    if len(embeddings) == 0:
        raise InputError(f"{where}: no embeddings to cluster")
    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad):
        raise InputError(
            f"{where}: {len(bad)} embedding(s) hold NaN or inf (first: row {bad[0]}); "
            f"re-embed from finite sub-tomograms"
        )
    too_small = [k for k in ks if k < 2]
    if too_small:
        raise InputError(f"{where}: k = {too_small[0]}: clustering needs k of at least 2")
    too_big = [k for k in ks if k >= len(embeddings)]
    if too_big:
        raise InputError(
            f"{where}: k = {too_big[0]} needs more than {len(embeddings)} particles "
            f"(k must be below the number of particles)"
        )
    distinct = len(np.unique(np.asarray(embeddings), axis=0))
    if distinct == 1 and len(embeddings) > 1:
        raise InputError(
            f"{where}: all {len(embeddings)} embeddings are the same vector: nothing tells the particles apart "
            f"(were their sub-tomograms all empty or all the same?)"
        )
    too_many = [k for k in ks if k > distinct]
    if too_many:
        raise InputError(
            f"{where}: k = {too_many[0]} needs {too_many[0]} different embeddings; there are {distinct} among "
            f"{len(embeddings)} particles (the same particle picked several times?)"
        )


NORMALISATIONS = ("l2", "none")


def normalise_features(embeddings: np.ndarray, how: str = "l2", where: str = "embeddings") -> np.ndarray:
    """'l2': each embedding scaled to unit length (its direction: margin losses train directions, and the norm
    mostly follows contrast); 'none': unchanged. A zero embedding cannot be scaled and is refused."""
    if how == "none":
        return embeddings
    if how != "l2":
        raise InputError(f"unknown normalisation {how!r}; choose from {', '.join(NORMALISATIONS)}")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if len(zero):
        raise InputError(f"{where}: embedding {zero[0]} is all zeros and has no direction; use --normalise none")
    return embeddings / norms
