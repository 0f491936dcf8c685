"""Which label-free rule should choose ``cluster``'s k? Each rule's k and the V-measure there (#9, #13)

    python benchmarks/k_selection.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 runs/monitor/dataset.h5 --domains \
        --cache runs/feats --out k_selection.json [--tta]

``cluster`` picks k by the highest Calinski-Harabasz score (``cluster.select_k``, chosen in session 4 on two
demo tomograms). With session 9's model that k is 2 on the denoised domain (V 0.42 where the true k gives 0.82)
and 3 on the crowded one: the V a user gets is the V at this k. Rules compared, all on the unit features and
k-means over k = 2 .. max(15, 1.5 x true k) (a user's range wide enough for the set):

- ``calinski_harabasz``: the highest score (today's rule); ``silhouette``: the highest;
  ``davies_bouldin``: the lowest;
- ``eigengap``: the largest gap in the spectrum of the normalised Laplacian of a cosine 10-nearest-neighbour
  graph (spectral clustering's classical rule: as many near-zero eigenvalues as loosely connected groups);
- ``stability``: the largest k whose clustering is stable under resampling (``cluster.stability`` >= 0.9);
- ``coassociation``: the number of groups of ``cluster --rare``'s co-association rule.

Chosen on the design sets, read on the domains. Per set and rule: the k and V there; the means over each part.
"""

from __future__ import annotations

import numpy as np

STABLE = 0.9  # ``stability`` rule: the largest k at least this stable


def eigengap_k(unit: np.ndarray, ks: range) -> int:
    """The k in ``ks`` after which the normalised graph Laplacian's eigenvalues jump the most (the package's
    ``cluster.graph_eigengaps``: 10 neighbours, Euclidean on unit features, i.e. cosine)."""
    from deepfinder_unsup.cluster import graph_eigengaps

    gaps = graph_eigengaps(unit, ks)
    return int(max(gaps, key=lambda k: np.nan_to_num(gaps[k], nan=-1.0)))


def rule_ks(unit: np.ndarray, ks: range) -> dict[str, int]:
    """Each rule's k on unit features."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    from deepfinder_unsup.cluster import coassociation_labels, stability

    labels = {k: KMeans(k, n_init=10, random_state=0).fit_predict(unit) for k in ks}
    ch = {k: calinski_harabasz_score(unit, lab) for k, lab in labels.items()}
    sil = {k: silhouette_score(unit, lab) for k, lab in labels.items()}
    db = {k: davies_bouldin_score(unit, lab) for k, lab in labels.items()}
    stable = [k for k in ks if stability(unit, k, 0, pairs=3) >= STABLE]
    groups = coassociation_labels(unit)
    return {
        "calinski_harabasz": max(ch, key=ch.get),
        "silhouette": max(sil, key=sil.get),
        "davies_bouldin": min(db, key=db.get),
        "eigengap": eigengap_k(unit, ks),
        "stability": max(stable) if stable else ks[0],
        "coassociation": max(int(len(set(groups) - {-1})), ks[0]),
    }


def score(features: np.ndarray, truth: np.ndarray) -> dict:
    """Per rule: its k and V there (k-means at that k); and V at the true k for reference."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from deepfinder_unsup.cluster import normalise_features

    unit = normalise_features(features)
    k_true = len(np.unique(truth))
    ks = range(2, max(15, int(np.ceil(1.5 * k_true))) + 1)
    out = {}
    for rule, k in rule_ks(unit, ks).items():
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(unit)
        out[rule] = {"k": int(k), "v": round(v_measure_score(truth, labels), 4), "k_error": int(k - k_true)}
    return out


def main() -> None:
    from feature_normalisation import run_study

    run_study(__doc__.splitlines()[0], score)


if __name__ == "__main__":
    main()
