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

The package, bottom to top: ``choose_k`` (the k rule, stability), ``sweep`` (the clusterings and their scores),
``outputs`` (the files), ``rare`` (rare-structure rules).
"""

from .choose_k import (
    EIGENGAP_MAX_PICKS,
    EIGENGAP_NEIGHBOURS,
    SELECTION_RULE,
    graph_eigengaps,
    graph_laplacian_spectrum,
    select_k,
    stability,
)
from .outputs import (
    clustered_objl,
    metrics_document,
    source_geometry,
    strict_json,
    write_cluster_files,
    write_clusters_csv,
    write_metrics,
)
from .rare import (
    COASSOCIATION_CUT,
    COASSOCIATION_KS,
    COASSOCIATION_MAX_PICKS,
    COASSOCIATION_MERGE,
    COASSOCIATION_SEEDS,
    RARE_METHODS,
    RARE_RULES,
    coassociation_labels,
    default_min_cluster_size,
    hdbscan_labels,
    kmeans_selected_k,
    merge_close_groups,
    overcluster_merge,
    rare_analysis,
    rare_class_found,
)
from .sweep import (
    AGGLOMERATIVE_MAX,
    DEFAULT_K_RANGE,
    MAX_K_VALUES,
    METHODS,
    MINIBATCH_ABOVE,
    NORMALISATIONS,
    SILHOUETTE_SAMPLE,
    check_clusterable,
    cluster_once,
    default_ks,
    label_free_scores,
    normalise_features,
    parse_k_range,
    sweep_k,
    truth_scores,
)

__all__ = [
    "AGGLOMERATIVE_MAX",
    "COASSOCIATION_CUT",
    "COASSOCIATION_KS",
    "COASSOCIATION_MAX_PICKS",
    "COASSOCIATION_MERGE",
    "COASSOCIATION_SEEDS",
    "DEFAULT_K_RANGE",
    "EIGENGAP_MAX_PICKS",
    "EIGENGAP_NEIGHBOURS",
    "MAX_K_VALUES",
    "METHODS",
    "MINIBATCH_ABOVE",
    "NORMALISATIONS",
    "RARE_METHODS",
    "RARE_RULES",
    "SELECTION_RULE",
    "SILHOUETTE_SAMPLE",
    "check_clusterable",
    "cluster_once",
    "clustered_objl",
    "coassociation_labels",
    "default_ks",
    "default_min_cluster_size",
    "graph_eigengaps",
    "graph_laplacian_spectrum",
    "hdbscan_labels",
    "kmeans_selected_k",
    "label_free_scores",
    "merge_close_groups",
    "metrics_document",
    "normalise_features",
    "overcluster_merge",
    "parse_k_range",
    "rare_analysis",
    "rare_class_found",
    "select_k",
    "source_geometry",
    "stability",
    "strict_json",
    "sweep_k",
    "truth_scores",
    "write_cluster_files",
    "write_clusters_csv",
    "write_metrics",
]
