"""Labelled sub-tomograms simulated around the picks' acquisition (``simulate.like``'s estimate), for the methods
that learn from simulation beside the picks (``like``, ``coral``, ``anchored``, ``dann``), and the paired
batches of both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.files import InputError
from ..log import logger
from ..train import augment
from .copies import pick_batches

LIKE_STRUCTURES = ("procedural:200:0",)  # made by code: no files needed on the user's side
ANCHOR_POOL = 1600  # ``anchored``, ``dann``: simulated sub-tomograms made once, drawn (augmented) 16 a step


@dataclass
class AnchorPool:
    """Simulated sub-tomograms (N, B, B, B) with their rows of the model's own class output (one-hot)."""

    volumes: np.ndarray
    targets: np.ndarray
    estimate: dict


def matched_simulation(vols: np.ndarray, card: dict, structures: list[str], batch: int, steps: int, seed: int):
    """Class-balanced simulated batches at the model's box and voxel size, the acquisition matched to ``vols``."""
    from ..simulate.config import SimConfig
    from ..simulate.keras_source import SimulatedBatches
    from ..simulate.like import config_like, estimate_acquisition
    from ..simulate.structures import load_structures

    estimate = estimate_acquisition(vols, seed=seed)
    logger.info(f"adapt (like): estimated {estimate.to_dict()}")
    base = SimConfig(box_size=int(card["box_size"]), voxel_size=float(card["voxel_size"]))
    config = config_like(estimate, base)
    source = SimulatedBatches(
        load_structures(structures, config.voxel_size), config, batch, steps, seed=seed, specs=structures
    )
    source.estimate = estimate.to_dict()
    return source


def anchor_structures(classes: dict) -> list[str]:
    """The structure specs of a model's classes made by code (``procN``, seeds from 0 up, free ones only): what
    ``anchored`` simulates when no ``structures`` are given, needing no files."""
    names = set(classes.values())
    n = 0
    while f"proc{n:07d}" in names:
        n += 1
    if n == 0:
        raise InputError(
            "method anchored simulates the model's own classes: this model has none made by code (procNNNNNNN); "
            "name its structures with --structures"
        )
    return [f"procedural:{n}:0"]


def anchor_pool(vols: np.ndarray, card: dict, structures: list[str] | None, seed: int) -> AnchorPool:
    """``ANCHOR_POOL`` sub-tomograms of the model's own classes, simulated around the picks' acquisition; the
    labels are the model's own output rows (by class name), so its class directions are the targets."""
    classes = {str(name): int(index) for index, name in card["classes"].items()}
    specs = structures or anchor_structures(card["classes"])
    source = matched_simulation(vols, card, specs, 16, ANCHOR_POOL // 16, seed)
    missing = sorted(set(source.class_names.values()) - set(classes))
    if missing:
        raise InputError(f"method anchored: the model has no class {', '.join(missing[:5])} (from {specs})")
    index_of = np.array([classes[source.class_names[int(label)]] for label in source.labels])
    xs, ys = zip(*(source[i] for i in range(len(source))))
    rows = index_of[np.concatenate(ys).argmax(axis=1)]
    targets = np.eye(len(classes), dtype=np.float32)[rows]
    return AnchorPool(np.concatenate(xs)[..., 0].astype(np.float32), targets, source.estimate)


def anchored_batches(anchor: AnchorPool, volumes: np.ndarray, targets: np.ndarray, batch: int, rng, noise: float):
    """Augmented (simulated half batch, user batch) with (their class rows, the picks' neighbour targets)."""
    picks = pick_batches(volumes, targets, batch, rng, noise)
    while True:
        idx = rng.integers(len(anchor.volumes), size=max(1, batch // 2))
        x_user, y_user = next(picks)
        yield (augment(anchor.volumes[idx], rng)[..., None], x_user), (anchor.targets[idx], y_user)


def with_user_batches(simulated, volumes: np.ndarray, rng: np.random.Generator):
    """The simulated batches, each paired with an augmented batch of the user's picks of the same size."""
    for i in range(len(simulated)):
        x, y = simulated[i]
        idx = rng.integers(len(volumes), size=len(x))
        yield (x, augment(volumes[idx], rng)[..., None]), y


def domain_batches(anchor: AnchorPool, volumes: np.ndarray, batch: int, rng: np.random.Generator):
    """Augmented (simulated half batch, user batch) with (their class rows, domain 0, domain 1)."""
    half = max(1, batch // 2)
    while True:
        idx = rng.integers(len(anchor.volumes), size=half)
        picks = rng.integers(len(volumes), size=batch)
        yield (
            (augment(anchor.volumes[idx], rng)[..., None], augment(volumes[picks], rng)[..., None]),
            (anchor.targets[idx], np.zeros((half, 1), np.float32), np.ones((batch, 1), np.float32)),
        )
