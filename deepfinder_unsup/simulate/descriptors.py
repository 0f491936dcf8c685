"""Rotation- and mirror-invariant shape descriptors of a structure's clean density: what an auxiliary training
target (``train --shape-weight``) asks the embedding to carry besides the class, so that structures nobody labelled
land near others of their size and shape rather than anywhere their class loss left room.

Each descriptor is computed from the density map alone (solvent 0, protein positive; negative voxels ignored),
is the same for a structure turned or mirrored, and is scaled to about -1..1 by fixed physical constants (no
fitting to any data set): the embedding's regression head sees the same targets in every run.
"""

from __future__ import annotations

import numpy as np

from .structures import Structure

RADII_A = (20.0, 40.0, 60.0, 80.0, 110.0, 150.0)  # the cumulative radial profile's shells (Å from the centre of mass)
DESCRIPTOR_NAMES = (
    "log_volume",  # (log10(V / nm^3) - 2.9) / 0.8, V the integrated density (envelope mean 1: volume at protein
    # density; 100 kDa - 4 MDa is about 120 - 4,800 nm^3, -1..1)
    "log_radius_of_gyration",  # log10(Rg / 60 Å) / 0.3
    "middle_axis_ratio",  # sqrt(λ2 / λ1) of the gyration tensor, 0..1, as 2 x - 1
    "short_axis_ratio",  # sqrt(λ3 / λ1), as 2 x - 1
    *(f"mass_within_{int(r)}A" for r in RADII_A),  # fraction of the density within r of the centre, as 2 x - 1
)
N_DESCRIPTORS = len(DESCRIPTOR_NAMES)


def shape_descriptors(structure: Structure) -> np.ndarray:
    """:data:`DESCRIPTOR_NAMES` of ``structure``'s density (float32, about -1..1)."""
    return density_descriptors(structure.density, structure.voxel_size)


def density_descriptors(density: np.ndarray, voxel_size: float) -> np.ndarray:
    """:data:`DESCRIPTOR_NAMES` of a density map ``[z, y, x]`` at ``voxel_size`` Å."""
    weights = np.clip(np.asarray(density, np.float64), 0.0, None)
    total = weights.sum()
    if total <= 0:
        raise ValueError("a shape needs positive density")
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in weights.shape], indexing="ij"), axis=-1) * voxel_size
    points, w = grid.reshape(-1, 3), weights.reshape(-1) / total
    offsets = points - w @ points
    gyration = (offsets * w[:, None]).T @ offsets
    eigen = np.sort(np.clip(np.linalg.eigvalsh(gyration), 0.0, None))[::-1]
    radius_of_gyration = float(np.sqrt(eigen.sum()))
    distance = np.sqrt((offsets**2).sum(axis=1))
    within = [float(w[distance <= r].sum()) for r in RADII_A]
    volume_nm3 = total * (voxel_size / 10.0) ** 3
    values = [
        (np.log10(max(volume_nm3, 1e-3)) - 2.9) / 0.8,
        np.log10(max(radius_of_gyration, 1e-3) / 60.0) / 0.3,
        2.0 * np.sqrt(eigen[1] / max(eigen[0], 1e-12)) - 1.0,
        2.0 * np.sqrt(eigen[2] / max(eigen[0], 1e-12)) - 1.0,
        *(2.0 * f - 1.0 for f in within),
    ]
    return np.asarray(values, np.float32)


def class_descriptors(structures: list[Structure], labels: np.ndarray) -> np.ndarray:
    """Per output row (``labels``: sorted class labels, 0 the negatives, k structure k - 1) the descriptors of the
    class's structure; zeros for the negatives (whose weight in the loss is 0)."""
    rows = np.zeros((len(labels), N_DESCRIPTORS), np.float32)
    for row, label in enumerate(labels):
        if int(label) > 0:
            rows[row] = shape_descriptors(structures[int(label) - 1])
    return rows
