"""Which clustering of the 32-D features should ``cluster`` run by default: k-means, a Gaussian mixture, Ward? (#9, #13)

    python benchmarks/clustering_methods.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 runs/monitor/dataset.h5 --domains \
        --cache runs/feats --out clustering_methods.json [--tta]

The features' nearest neighbours are mostly one structure (on the phase-plate domain 99 % of the 5 nearest
neighbours share the pick's class) while k-means at the true k cuts the diffuse negatives in two and joins a
small class to a large one: k-means assumes round clusters of one spread. A mixture with a variance per cluster
and dimension does not. Per set, on the unit (L2-normalised) features ``cluster`` clusters: V at the true k,
best V over k = 2 .. 2 x true k, and V at the k each method's own label-free rule selects (``cluster``'s
Calinski-Harabasz for every method; the BIC for the mixtures). Chosen on the design sets, read on the domains.
"""

from __future__ import annotations

import numpy as np

SEED = 0


def _labels(unit: np.ndarray, k: int, method: str):
    """(labels, fitted estimator) of one method at one k."""
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.mixture import GaussianMixture

    if method == "kmeans":
        est = KMeans(k, n_init=10, random_state=SEED).fit(unit)
        return est.labels_, est
    if method == "ward":
        est = AgglomerativeClustering(k, linkage="ward").fit(unit)
        return est.labels_, est
    covariance = {"gmm_full": "full", "gmm_diag": "diag"}[method]
    est = GaussianMixture(k, covariance_type=covariance, n_init=2, reg_covar=1e-4, random_state=SEED).fit(unit)
    return est.predict(unit), est


METHODS = ("kmeans", "gmm_diag", "gmm_full", "ward")


def sweep(unit: np.ndarray, truth: np.ndarray, method: str) -> dict:
    """V at the true k, best V, and V at the label-free k (Calinski-Harabasz; BIC too for mixtures)."""
    from sklearn.metrics import calinski_harabasz_score, v_measure_score

    k_true = len(np.unique(truth))
    v, ch, bic = {}, {}, {}
    for k in range(2, 2 * k_true + 1):
        labels, est = _labels(unit, k, method)
        v[k] = v_measure_score(truth, labels)
        ch[k] = calinski_harabasz_score(unit, labels) if len(np.unique(labels)) > 1 else -1.0
        if method.startswith("gmm"):
            bic[k] = est.bic(unit)
    out = {
        "v_true_k": round(v[k_true], 4),
        "best_v": round(max(v.values()), 4),
        "k_ch": max(ch, key=ch.get),
        "v_ch": round(v[max(ch, key=ch.get)], 4),
    }
    if bic:
        out.update(k_bic=min(bic, key=bic.get), v_bic=round(v[min(bic, key=bic.get)], 4))
    return out


def score(features: np.ndarray, truth: np.ndarray) -> dict:
    from deepfinder_unsup.cluster import normalise_features

    unit = normalise_features(features)
    return {method: sweep(unit, truth, method) for method in METHODS}


def main() -> None:
    from feature_normalisation import run_study

    run_study(__doc__.splitlines()[0], score)


if __name__ == "__main__":
    main()
