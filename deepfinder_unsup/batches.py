"""The base of the package's Keras data sources: reproducible batches, a fixed number per epoch.

Batch ``i`` of epoch ``e`` draws from ``default_rng([seed, e, i])``, so training is repeatable and resumable
(set ``epoch``), whatever the order Keras asks for the batches in.
"""

from __future__ import annotations

import keras
import numpy as np


def one_hot(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One-hot rows for ``labels``; column j is ``classes[j]`` (``classes`` sorted)."""
    y = np.zeros((len(labels), len(classes)), np.float32)
    y[np.arange(len(labels)), np.searchsorted(classes, labels)] = 1.0
    return y


class SeededBatches(keras.utils.PyDataset):
    """``steps`` batches per epoch, each made by :meth:`make_batch` from its own seeded generator."""

    def __init__(self, steps: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.steps, self.seed, self.epoch = steps, seed, 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, idx: int):
        return self.make_batch(np.random.default_rng([self.seed, self.epoch, idx]))

    def make_batch(self, rng: np.random.Generator):
        raise NotImplementedError
