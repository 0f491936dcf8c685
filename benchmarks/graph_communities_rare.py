"""Do Louvain communities of a k-nearest-neighbour graph find a 2 % structure better than co-association? (#13)

    python benchmarks/graph_communities_rare.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 --cache runs/feats --out OUT.json

Single-cell biology finds rare cell types this way (Seurat, Scanpy: a shared-nearest-neighbour graph, modularity
communities). Here: the cosine kNN graph of the unit features (edges weighted by the Jaccard overlap of the two
picks' neighbour sets, or 1), networkx's Louvain at a resolution, communities under ``cluster``'s minimum size
unassigned, optionally ``merge_close_groups`` after; scored exactly as ``rare_rules.py`` scores
``cluster.RARE_RULES`` (each class in turn cut to 2 %), next to the co-association rule. Needs networkx (a
benchmark-only dependency: ``pip install networkx``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rare_rules import rare_trials, score_rules

SETTINGS = [  # (neighbours, resolution, Jaccard weights, merge ratio or None)
    (10, 0.5, True, None),
    (10, 1.0, True, None),
    (15, 0.5, True, None),
    (15, 1.0, True, None),
    (10, 1.0, True, 1.5),
    (10, 1.0, False, None),
]


def knn_graph(unit: np.ndarray, k: int, jaccard: bool):
    """Undirected graph of each pick's ``k`` nearest neighbours (Euclidean on unit vectors = cosine order)."""
    import networkx as nx
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(unit).kneighbors(unit)
    sets = [set(row.tolist()) for row in idx]
    graph = nx.Graph()
    graph.add_nodes_from(range(len(unit)))
    for i, row in enumerate(idx):
        for j in row[1:].tolist():
            weight = len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if jaccard else 1.0
            graph.add_edge(i, j, weight=max(weight, graph.get_edge_data(i, j, {"weight": 0.0})["weight"]))
    return graph


def louvain_rule(k: int, resolution: float, jaccard: bool, merge: float | None):
    """A rare-structure rule: features -> 0-based labels, -1 for picks in communities under the minimum size."""
    import networkx as nx

    from deepfinder_unsup.cluster import default_min_cluster_size, merge_close_groups
    from deepfinder_unsup.cluster.rare import _small_groups_unassigned

    def rule(unit: np.ndarray) -> np.ndarray:
        communities = nx.community.louvain_communities(knn_graph(unit, k, jaccard), resolution=resolution, seed=0)
        labels = np.zeros(len(unit), int)
        for c, members in enumerate(communities):
            labels[list(members)] = c
        if merge:
            labels = merge_close_groups(unit, labels, merge)
        return _small_groups_unassigned(labels, default_min_cluster_size(len(unit)))

    return rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general")
    parser.add_argument("--design", nargs="+", required=True, help="simulated data sets to choose on")
    parser.add_argument("--cache", type=Path, help="folder of cached features (as rare_rules.py)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from feature_normalisation import cached_features

    from deepfinder_unsup import cluster
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset

    rules = {"coassociation": cluster.coassociation_labels}
    for k, res, jac, merge in SETTINGS:
        rules[f"louvain_k{k}_res{res}{'_jaccard' if jac else ''}{f'_merge{merge}' if merge else ''}"] = louvain_rule(
            k, res, jac, merge
        )
    cluster.RARE_RULES.clear()  # score_rules scores cluster.RARE_RULES: these candidates instead, this run only
    cluster.RARE_RULES.update(rules)
    embedder = Embedder(args.model, tta=False)
    results: dict = {"model": args.model, "design": {}, "total": {}}
    for path in args.design:
        data = read_dataset(path)
        name = Path(path).parent.name
        features = cached_features(args.cache, name, False, embedder, data.subtomograms, data.voxel_size)
        results["design"][path] = score_rules(features, data.labels, rare_trials(data.labels))
    for rule in rules:
        per_set = [results["design"][p][rule] for p in args.design]
        results["total"][rule] = {
            "found": sum(s["found"] for s in per_set),
            "trials": sum(s["trials"] for s in per_set),
            "mean_v_measure": [s["mean_v_measure"] for s in per_set],
        }
        print(rule, results["total"][rule], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
