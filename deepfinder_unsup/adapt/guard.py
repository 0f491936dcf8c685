"""What ``adapt`` measured and the label-free scores its guard reads: the silhouette of k-means at the input
model's k (and over the k range), and the signs of a collapsed clustering. Labels are never used."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics
from sklearn.cluster import KMeans

from .objectives import DISPERSION

COLLAPSE_LARGEST = 0.9  # a cluster holding more than this fraction of the picks: collapse
COLLAPSE_SPREAD = 0.25  # features' spread below this fraction of the input model's: collapse
STABILITY_TOLERANCE = 0.02  # an adapted model whose clustering is less stable than this below the input's is refused
# a kept round sharing fewer of the input's nearest neighbours than this times the input's share between one view
# and four gets a warning: the default's kept rounds 0.80-0.99 of it on two design sets and the four domains
# (session 28), ``infomax``'s 0.66-0.74 on a design set while its V fell 0.11 (session 27; docs/adaptation.md)
NEIGHBOURHOOD_WARNING = 0.75


@dataclass
class AdaptReport:
    """What ``adapt`` did and measured (written into the adapted model's card)."""

    method: str
    n_picks: int
    k: int
    score_before: float  # silhouette of k-means at k on the L2-normalised features
    score_after: float
    kept: str  # "adapted" or "input"
    stability_before: float = 0.0  # cluster.stability: the same partition under resampling?
    stability_after: float = 0.0
    rounds: list = field(default_factory=list)
    seconds: float = 0.0
    source: str = ""
    estimate: dict = field(default_factory=dict)  # ``like``: what was estimated from the picks
    guard_passed: bool = False  # both label-free scores said better (``guard=False`` writes the model anyway)
    precision: str = "float32"  # arithmetic of the adaptation (the written model is float32)
    silhouette_over_k_before: float = 0.0  # mean silhouette over the k range (each round records its own)
    tta: bool = False  # features (neighbours, scores) from the four wedge-symmetric views: embed follows it
    neighbours: int = 0  # method ``neighbours``: nearest neighbours each pick is pulled towards (0: other methods)
    noise: float = 0.0  # method ``neighbours``: own-spectrum noise added to the training copies (0: none)
    one_way_weight: float = 1.0  # method ``neighbours``: weight of a neighbour that is not mutual (1: AaD)
    dispersion: float = DISPERSION  # method ``neighbours``: weight of the push from the batch's other picks
    augmentation: str = "flip"  # method ``neighbours``: the training copies' (``augmented``)
    anchor_weight: float = 0.0  # method ``anchored``: weight of the simulated CosFace term (0: other methods)
    domain_weight: float = 0.0  # method ``dann``: weight of the domain classifier's loss (0: other methods)
    freeze_convs: int = 0  # the encoder's first convolutions kept as they were (``adapt(..., freeze_convs=N)``)
    steps: int = 0  # training steps a round
    batch_size: int = 32  # sub-tomograms a step (user picks; ``anchored``, ``dann``: as many simulated beside them)
    neighbourhood_kept: float = 1.0  # the written model's share of the input's nearest neighbours (1: the input)
    neighbourhood_between_views: float = 1.0  # the input's share between one view's features and four views'


def label_free_score(features: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> tuple[float, np.ndarray]:
    """(silhouette of k-means at ``k`` on L2 features, the cluster labels)."""
    labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(features)
    sample = min(len(features), 5000)
    return float(metrics.silhouette_score(features, labels, sample_size=sample, random_state=seed)), labels


def silhouette_over_k(features: np.ndarray, ks: range, seed: int = 0) -> float:
    """Mean silhouette of k-means over ``ks`` (L2 features): the clustering's quality at every resolution, not
    only at one k that may merge structures."""
    return float(np.mean([label_free_score(features, k, seed, n_init=3)[0] for k in ks]))


def collapsed(features: np.ndarray, labels: np.ndarray, reference_spread: float) -> str | None:
    """Why the clustering collapsed, or None."""
    largest = np.bincount(labels).max() / len(labels)
    if largest > COLLAPSE_LARGEST:
        return f"one cluster holds {largest:.0%} of the picks"
    spread = float(features.std(axis=0).sum())
    if spread < COLLAPSE_SPREAD * reference_spread:
        return f"the features' spread fell to {spread / reference_spread:.0%} of the input model's"
    return None
