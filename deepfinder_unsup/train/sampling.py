"""Batches from a data set in memory: class-balanced draws, DeepFinder's augmentation, and validation labels
matched to the training classes by name."""

from __future__ import annotations

import numpy as np

from ..batches import SeededBatches, one_hot
from ..io.dataset import SubtomoDataset
from ..io.files import InputError


def balanced_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sample indices whose classes are drawn uniformly (then a sample uniformly within the class)."""
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    chosen = rng.integers(len(classes), size=n)
    return np.array([members[c][rng.integers(len(members[c]))] for c in chosen])


def augment(batch: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """180 degree rotation about y (flip z and x) with p = 0.5, and a random integer shift (periodic)."""
    out = batch.copy()
    for i in range(len(out)):
        if rng.uniform() < 0.5:
            out[i] = out[i, ::-1, :, ::-1]
        if max_shift:
            out[i] = np.roll(out[i], tuple(rng.integers(-max_shift, max_shift + 1, size=3)), axis=(0, 1, 2))
    return out


class BalancedBatches(SeededBatches):
    """Class-balanced, augmented batches drawn from an in-memory data set (x (b, B, B, B, 1), one-hot y)."""

    def __init__(
        self,
        volumes: np.ndarray,
        labels: np.ndarray,
        classes: np.ndarray,
        batch_size: int,
        steps: int,
        seed: int,
        max_shift: int = 2,
        **kwargs,
    ):
        super().__init__(steps, seed, **kwargs)
        self.volumes, self.labels, self.classes = volumes, labels, classes
        self.batch_size, self.max_shift = batch_size, max_shift

    def make_batch(self, rng: np.random.Generator):
        sel = balanced_indices(self.labels, self.batch_size, rng)
        x = augment(self.volumes[sel], rng, self.max_shift)
        return x[..., None], one_hot(self.labels[sel], self.classes)


def relabel_by_name(data: SubtomoDataset, class_names: dict[int, str]) -> SubtomoDataset:
    """``data`` with its labels renumbered to the training labels of the same class names."""
    by_name = {name: label for label, name in class_names.items()}
    mapping = {}
    for label in np.unique(data.labels):
        name = data.class_names.get(int(label), str(label))
        if name not in by_name:
            raise InputError(f"validation class {name!r} is not among the training classes")
        mapping[int(label)] = by_name[name]
    if all(k == v for k, v in mapping.items()):
        return data
    objl = [{**o, "label": mapping[int(o["label"])]} for o in data.objl]
    names = {mapping[int(k)]: v for k, v in data.class_names.items() if int(k) in mapping}
    return SubtomoDataset(data.subtomograms, objl, data.voxel_size, {**data.attrs, "class_names": names})


def check_compatible(a: SubtomoDataset, b: SubtomoDataset) -> None:
    if a.subtomograms.shape[1:] != b.subtomograms.shape[1:] or abs(a.voxel_size - b.voxel_size) > 1e-6:
        raise InputError(
            f"training and validation sets differ: box {a.subtomograms.shape[1:]} at "
            f"{a.voxel_size} Å vs {b.subtomograms.shape[1:]} at {b.voxel_size} Å"
        )
