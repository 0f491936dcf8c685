"""Clustering of embeddings: a sweep over k, label-free and truth scores, a rule that picks k, and the
per-cluster object lists (DeepFinder XML, RELION STAR) and table that go back into the user's workflow.

Methods (scikit-learn): ``kmeans`` (default, as in the paper; ``MiniBatchKMeans`` beyond 50,000 particles),
``gmm`` (full covariances; adds BIC), and ``agglomerative`` (Ward, up to 30,000 particles). Label-free scores
per k: silhouette, Calinski-Harabasz, Davies-Bouldin (and BIC), and the neighbour graph's eigengap. With truth
labels: homogeneity, completeness, V-measure, ARI, NMI.

Choosing k without labels (``select_k``, since session 10): the largest eigengap of the picks' neighbour graph.
The normalised Laplacian of a graph joining each pick to its 10 nearest neighbours has as many eigenvalues near
0 as there are loosely joined groups of picks, then a jump (von Luxburg 2007, "A tutorial on spectral
clustering"); the k after which the jump is largest is selected, ties to the smaller k. Chosen on three design
sets over the Calinski-Harabasz maximum (the rule until session 9), the silhouette, Davies-Bouldin, a stability
threshold and the co-association group count: V at the selected k 0.639 against Calinski-Harabasz's 0.585; on
the four adaptation domains 0.706 against 0.615 (``benchmarks/k_selection.py``, docs/benchmarks.md). It errs
towards more clusters than structures (12 for 6), where Calinski-Harabasz merged them (2 for 7). The full curves
are in metrics.json and the report for the user to overrule.
"""

from __future__ import annotations

import copy
import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn import metrics
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from .io.files import InputError, atomic_path
from .io.objl import Objl, write_objl
from .io.star import write_star

METHODS = ("kmeans", "gmm", "agglomerative")
SILHOUETTE_SAMPLE = 5000  # silhouette is O(N^2): computed on a fixed random subset beyond this size
AGGLOMERATIVE_MAX = 30_000  # Ward linkage holds pairwise distances: beyond this it is refused, not swapped to death
MINIBATCH_ABOVE = 50_000  # k-means on more particles runs mini-batch (scikit-learn's MiniBatchKMeans)


MAX_K_VALUES = 500  # one clustering per value: a longer sweep is a typo, not a plan
EIGENGAP_NEIGHBOURS = 10  # graph neighbours per pick for the k rule (5 and 10 equal on the design sets, 20 worse)
EIGENGAP_MAX_PICKS = 3000  # the spectrum costs O(N^3): beyond this it is computed on a fixed random sample


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


def metrics_document(per_k: list[dict], method: str, evaluate: bool, n: int) -> dict:
    """The content of metrics.json (schema in docs/formats.md)."""
    doc = {
        "method": method,
        "n_particles": int(n),
        "selection_rule": SELECTION_RULE,
        "per_k": per_k,
        "selected_k": select_k(per_k),
    }
    if evaluate:
        doc["best_k_by_v_measure"] = int(max(per_k, key=lambda r: (r["v_measure"], -r["k"]))["k"])
    return doc


def clustered_objl(objl: Objl, cluster_labels: np.ndarray) -> Objl:
    """A copy of ``objl`` where the cluster is the class: ``label`` = cluster number (1-based), ``class_name`` =
    ``cluster{C}``; the input's class is kept as ``true_label`` / ``true_class_name`` (never read as the class)."""
    if len(objl) != len(cluster_labels):  # zip would drop the tail of the longer silently
        raise InputError(f"{len(objl)} objects but {len(cluster_labels)} cluster labels: one label per object")
    out = []
    for obj, lab in zip(objl, cluster_labels):
        new = copy.copy(obj)
        if obj.get("label") is not None and "true_label" not in obj:
            new["true_label"] = obj["label"]
        if obj.get("class_name") is not None and "true_class_name" not in obj:
            new["true_class_name"] = obj["class_name"]
        new["label"] = int(lab)
        new["class_name"] = f"cluster{int(lab)}"
        out.append(new)
    return out


def write_cluster_files(
    objl: Objl,
    assignments: dict[int, np.ndarray],
    out_dir: str | os.PathLike,
    tomo_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """``clusters_k{K}.xml`` and ``.star`` per k, and ``clusters.csv`` (one row per particle, one column per k)."""
    out_dir = Path(out_dir)
    written = []
    geometry = source_geometry(objl)
    for k, labels in assignments.items():
        cl = clustered_objl(objl, labels)
        written.append(write_objl(cl, out_dir / f"clusters_k{k}.xml", overwrite=overwrite))
        star = out_dir / f"clusters_k{k}.star"
        written.append(write_star(cl, star, tomo_names=tomo_names, overwrite=overwrite, geometry=geometry))
    written.append(write_clusters_csv(objl, assignments, out_dir / "clusters.csv", overwrite))
    return written


def source_geometry(objl: Objl) -> dict:
    """{tomogram stem: ((size x, y, z), voxel size)} of the objects' source tomograms that can be read (for the
    STAR files' RELION 5 coordinates); unreadable or missing sources are left out."""
    from .io.mrc import read_mrc_geometry

    geometry = {}
    for source in {str(o["source"]) for o in objl if o.get("source")}:
        if source.endswith((".mrc", ".rec", ".map")) and Path(source).exists():
            try:
                geometry[Path(source).stem] = read_mrc_geometry(source)
            except InputError:
                continue
    return geometry


def write_clusters_csv(objl: Objl, assignments: dict[int, np.ndarray], path, overwrite: bool = False) -> Path:
    ks = sorted(assignments)
    with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["index", "tomo_idx", "obj_id", "x", "y", "z", "class_label", "source"] + [f"cluster_k{k}" for k in ks]
        )
        for i, obj in enumerate(objl):
            writer.writerow(
                [
                    i,
                    obj.get("tomo_idx"),
                    obj.get("obj_id"),
                    obj["x"],
                    obj["y"],
                    obj["z"],
                    obj.get("label"),
                    obj.get("source", ""),
                ]
                + [int(assignments[k][i]) for k in ks]
            )
    return Path(path)


def strict_json(value):
    """``value`` with every NaN / inf float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_metrics(doc: dict, path, overwrite: bool = False) -> Path:
    """metrics.json, strict JSON (undefined scores are null)."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(strict_json(doc), indent=2, allow_nan=False))
    return Path(path)


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


# --- rare classes: label-free rules that can give a 1-3 % structure its own cluster ------------------------


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


COASSOCIATION_KS = (10, 15, 20, 25, 30)  # k-means runs of the co-association rule (more clusters than classes)
COASSOCIATION_SEEDS = 2  # runs per k
COASSOCIATION_CUT = 0.8  # average-linkage cut on 1 - co-association (chosen on design sets: docs/adaptation.md)
COASSOCIATION_MERGE = 1.5  # then groups whose centres are closer than 1.5x their mean spread are joined
COASSOCIATION_MAX_PICKS = 4000  # the co-association matrix is N^2: beyond this, fit on a sample, assign the rest


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
