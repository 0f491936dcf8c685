"""Would the neighbour graph's connected components be a better label-free k than the largest eigengap? (session 55)

    python benchmarks/results/k_rule_components_session55.py MODEL SET.h5 [SET.h5 ...] > LOG

On the demo (6 shapes) the symmetrised 10-nearest-neighbour graph of `cluster` falls apart into exactly 6
components (V 1.000 at k = 6), yet the largest eigengap selects k = 10 (V 0.898). Per labelled set: the number of
components and their sizes, the eigengap's k over `cluster`'s range (2 .. max(15, 1.5 x true k)), and k-means V on
the unit features at the true k, the eigengap's k and the number of components (where it is 2 or more). Features
are kept in runs/cache (benchmarks/paired_bootstrap.py's cache).

Result (the shipped `general`, benchmarks/results/k_rule_components_session55.json): of 11 held-out sets, 4 have
a disconnected graph (two adaptation domains and two of the three cleaner sets of benchmarks/k_rule_sets.sh), and
in all 4 the components are groups of classes (2, 3, 3, 4 components for 7, 7, 9, 13 classes): the components' k would
cost 0.16-0.46 V where the eigengap's k loses at most 0.03 there. Not adopted; the eigengap stays.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "benchmarks")


def v_at(x: np.ndarray, truth: np.ndarray, k: int) -> float:
    """k-means V-measure at ``k`` (10 restarts, seed 0)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    return round(v_measure_score(truth, KMeans(k, n_init=10, random_state=0).fit_predict(x)), 4)


def main() -> None:
    from paired_bootstrap import cached_features
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import kneighbors_graph

    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.cluster.choose_k import EIGENGAP_NEIGHBOURS, graph_laplacian_spectrum
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset

    embedder = Embedder(sys.argv[1]).fit()
    for path in sys.argv[2:]:
        data = read_dataset(path)
        truth = np.asarray(data.labels)
        keep = np.ones(len(truth), bool)
        features = cached_features(embedder, path, data.subtomograms, keep, Path("runs/cache"))
        x = normalise_features(features.astype(np.float64))
        k_true = len(np.unique(truth))
        k_max = max(15, int(np.ceil(1.5 * k_true)))
        graph = kneighbors_graph(x, EIGENGAP_NEIGHBOURS)
        n_components, component = connected_components(graph + graph.T)
        eigenvalues = graph_laplacian_spectrum(x)
        gaps = {k: eigenvalues[k] - eigenvalues[k - 1] for k in range(2, k_max + 1) if k < len(eigenvalues)}
        k_eigengap = max(gaps, key=gaps.get)

        row = {
            "true_k": k_true,
            "components": int(n_components),
            "sizes": sorted(np.bincount(component).tolist())[:10],
            "eigengap_k": int(k_eigengap),
            "v_true": v_at(x, truth, k_true),
            "v_eigengap": v_at(x, truth, k_eigengap),
            "v_components": v_at(x, truth, n_components) if 2 <= n_components <= k_max else None,
        }
        print(path, row, flush=True)


if __name__ == "__main__":
    main()
