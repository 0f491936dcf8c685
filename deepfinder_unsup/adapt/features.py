"""The picks' unit features (one view or the mean of four, as ``embed --tta``) and their nearest-neighbour
structure: the targets of ``neighbours`` and the check that an adaptation kept what the input model found."""

from __future__ import annotations

import keras
import numpy as np

from ..cluster import normalise_features
from ..volume import wedge_symmetric_views

NEIGHBOURS = 30  # ``neighbours``: nearest neighbours each pick is pulled towards (AaD's K; 5 before session 16)


def unit_embeddings(network: keras.Model, volumes: np.ndarray, batch: int = 64) -> np.ndarray:
    """L2-normalised embeddings of normalised volumes (N, B, B, B), one view."""
    out = [
        np.asarray(network(np.ascontiguousarray(volumes[i : i + batch])[..., None], training=False))
        for i in range(0, len(volumes), batch)
    ]
    return normalise_features(np.concatenate(out).astype(np.float64))


def mean_of_views(per_view: list[np.ndarray]) -> np.ndarray:
    """The mean of unit embeddings of several views of each pick, normalised again (as ``embed --tta``)."""
    return normalise_features(np.sum(per_view, axis=0))


def features_of(network: keras.Model, volumes: np.ndarray, batch: int = 64, tta: bool = False) -> np.ndarray:
    """L2-normalised embeddings of normalised volumes (N, B, B, B); with ``tta`` the mean of the unit embeddings
    of the four wedge-symmetric views (as ``embed --tta``), normalised again."""
    views = wedge_symmetric_views(volumes) if tta else [volumes]
    return mean_of_views([unit_embeddings(network, view, batch) for view in views])


def nearest_neighbours(features: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each pick's ``k`` nearest other picks by cosine, in no particular order."""
    unit = normalise_features(np.asarray(features, np.float64))
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argpartition(-similarity, k - 1, axis=1)[:, :k]


def neighbour_targets(features: np.ndarray, k: int, one_way_weight: float = 1.0) -> np.ndarray:
    """Per pick, the weighted mean of its ``k`` nearest neighbours' unit features (cosine; itself excluded).

    A neighbour that also has the pick among its own ``k`` nearest (mutual) weighs 1, one that does not weighs
    ``one_way_weight`` (1: AaD, every neighbour alike; 0.1: NRC's reciprocal weighting, Yang et al. 2021): a
    one-way neighbour is more often of another structure, at a cluster's rim or across a merged boundary."""
    unit = normalise_features(np.asarray(features, np.float64))
    k = max(1, min(k, len(unit) - 1))
    nearest = nearest_neighbours(unit, k)
    weights = np.ones(nearest.shape)
    if one_way_weight != 1.0:
        is_neighbour = np.zeros((len(unit), len(unit)), bool)
        np.put_along_axis(is_neighbour, nearest, True, axis=1)
        mutual = np.take_along_axis(is_neighbour.T, nearest, axis=1)  # [i, j]: is i among nearest[i, j]'s own?
        weights = np.where(mutual, 1.0, one_way_weight)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkd->nd", weights, unit[nearest]).astype(np.float32)


def neighbourhood_overlap(before: np.ndarray, after: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Mean share of each pick's ``k`` nearest neighbours in ``before`` that are still among its ``k`` nearest in
    ``after`` (cosine): 1 when an adaptation only tightened the neighbourhoods the input model found, about
    k / N when it replaced them. The silhouette and the stability reward any tight partition, a wrong one too;
    this says whether the adapted features kept the class structure learned in simulation (docs/adaptation.md)."""
    k = max(1, min(k, len(before) - 1))
    old, new = nearest_neighbours(before, k), nearest_neighbours(after, k)
    kept = np.zeros(old.shape[0])
    for i, (a, b) in enumerate(zip(old, new)):
        kept[i] = np.intersect1d(a, b, assume_unique=True).size
    return float(kept.mean() / k)
