"""The training copies of the user's picks: the training augmentation, wedge-symmetric views, the picks' own
noise colour, and endless batches of them with their targets."""

from __future__ import annotations

import numpy as np

from ..io.files import InputError
from ..train import augment
from ..volume import WEDGE_VIEW_AXES, normalise, phase_randomised, random_wedge_symmetric_view

AUGMENTATIONS = ("flip", "views")  # ``augmented``: the training copies of the picks


def with_own_spectrum_noise(
    batch: np.ndarray, pool: np.ndarray, rng: np.random.Generator, strength: float
) -> np.ndarray:
    """Each volume of ``batch`` plus a phase-randomised pick of ``pool`` (the user's own noise colour and
    wedge) scaled by U(0, ``strength``), renormalised: a lower-SNR copy of the same particle. With unit-variance
    volumes of SNR s, the copy's SNR is s / (1 + a^2 (1 + s)): at most halved for ``strength`` 1."""
    out = np.empty_like(batch)
    for i, volume in enumerate(batch):
        noise = phase_randomised(pool[rng.integers(len(pool))], rng)
        out[i] = volume + rng.uniform(0.0, strength) * noise
    return normalise(out)


def any_wedge_view(volumes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each volume as one of its four wedge-symmetric views (``volume.wedge_symmetric_views``, the identity
    included), drawn uniformly: the views ``--tta`` averages over, as training copies."""
    keep = rng.uniform(size=len(volumes)) < 1 / (1 + len(WEDGE_VIEW_AXES))
    return np.where(keep[:, None, None, None], volumes, random_wedge_symmetric_view(volumes, rng))


def require_augmentation(augmentation: str) -> None:
    """Refuse an augmentation ``augmented`` does not know, naming it and the choices."""
    if augmentation not in AUGMENTATIONS:
        raise InputError(f"unknown augmentation {augmentation!r}; choose from {', '.join(AUGMENTATIONS)}")


def augmented(volumes: np.ndarray, rng: np.random.Generator, augmentation: str = "flip") -> np.ndarray:
    """Training copies of picks: ``flip``, the training augmentation (``train.augment``: a 180 degree turn about
    y with p = 0.5 and a shift of up to 2 voxels); ``views``, the same after a uniformly drawn wedge-symmetric
    view (a uniform element of the four-view group composed with any element stays uniform)."""
    require_augmentation(augmentation)
    return augment(any_wedge_view(volumes, rng) if augmentation == "views" else volumes, rng)


def pick_batches(
    volumes: np.ndarray,
    targets: np.ndarray,
    batch: int,
    rng: np.random.Generator,
    noise: float = 0.0,
    augmentation: str = "flip",
):
    """Augmented batches of the picks with their rows of ``targets`` (one-hot labels or neighbour features)."""
    while True:
        idx = rng.integers(len(volumes), size=batch)
        x = augmented(volumes[idx], rng, augmentation)
        if noise:
            x = with_own_spectrum_noise(x, volumes, rng, noise)
        yield x[..., None], targets[idx]
