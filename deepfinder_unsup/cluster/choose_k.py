"""Choosing k without labels: the largest eigengap of the picks' neighbour graph (``select_k``), and the
clustering's stability under resampling (what ``adapt``'s guard reads)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics
from sklearn.cluster import KMeans

from ..io.files import InputError

EIGENGAP_NEIGHBOURS = 10  # graph neighbours per pick for the k rule (5 and 10 equal on the design sets, 20 worse)
EIGENGAP_MAX_PICKS = 3000  # the spectrum costs O(N^3): beyond this it is computed on a fixed random sample


SELECTION_RULE = "max eigengap"


def graph_laplacian_spectrum(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """Ascending eigenvalues of the normalised Laplacian of the picks' symmetrised k-nearest-neighbour graph
    (``EIGENGAP_NEIGHBOURS``, Euclidean on the features as clustered: cosine on unit features); on a fixed
    random sample of ``EIGENGAP_MAX_PICKS`` beyond that many picks."""
    from scipy.sparse.csgraph import laplacian
    from sklearn.neighbors import kneighbors_graph

    x = np.asarray(embeddings, np.float64)
    if len(x) > EIGENGAP_MAX_PICKS:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), EIGENGAP_MAX_PICKS, replace=False))]
    graph = kneighbors_graph(x, min(EIGENGAP_NEIGHBOURS, len(x) - 1), include_self=False)
    affinity = 0.5 * (graph + graph.T).toarray()
    return np.sort(np.linalg.eigvalsh(laplacian(affinity, normed=True)))


def graph_eigengaps(embeddings: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, float]:
    """Per k, the jump from the k-th to the (k+1)-th smallest eigenvalue of ``graph_laplacian_spectrum``: large
    where the picks form k loosely joined groups. NaN where the (sampled) graph has too few nodes."""
    if len(embeddings) < 3:
        return {int(k): float("nan") for k in ks}
    eigenvalues = graph_laplacian_spectrum(embeddings, seed)
    return {int(k): float(eigenvalues[k] - eigenvalues[k - 1]) if k < len(eigenvalues) else float("nan") for k in ks}


def select_k(per_k: list[dict]) -> int:
    """The documented label-free rule: the largest eigengap of the neighbour graph, smaller k on ties; a NaN
    gap never wins."""
    if not per_k:
        raise InputError("no k was clustered: nothing to select from")
    best = max(per_k, key=lambda r: (np.nan_to_num(r["eigengap"], nan=-1.0), -r["k"]))
    return int(best["k"])


def stability(features: np.ndarray, k: int, seed: int = 0, pairs: int = 5, fraction: float = 0.8) -> float:
    """Clustering stability under resampling: k-means at ``k`` on two random subsets of ``fraction`` of the
    picks, the adjusted Rand index of their labels on the picks both hold, averaged over ``pairs`` pairs.
    1: the same partition whatever the sample; near 0: the partition is an accident of the sample."""
    rng = np.random.default_rng(seed)
    n = len(features)
    size = max(k + 1, int(fraction * n))
    scores = []
    for i in range(pairs):
        a, b = (np.sort(rng.choice(n, size, replace=False)) for _ in range(2))
        both = np.intersect1d(a, b)
        la = KMeans(k, n_init=3, random_state=seed + 2 * i).fit(features[a]).predict(features[both])
        lb = KMeans(k, n_init=3, random_state=seed + 2 * i + 1).fit(features[b]).predict(features[both])
        scores.append(metrics.adjusted_rand_score(la, lb))
    return float(np.mean(scores))
