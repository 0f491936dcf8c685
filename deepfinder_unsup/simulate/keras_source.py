"""A Keras data source of class-balanced batches simulated on the fly (imports Keras, so kept apart)."""
from __future__ import annotations

import keras
import numpy as np

from .config import SimConfig
from .dataset import balanced_labels, class_names_of
from .scene import StructureLibrary, simulate_subtomogram
from .structures import Structure


class SimulatedBatches(keras.utils.PyDataset):
    """Class-balanced batches of freshly simulated sub-tomograms, for ``model.fit`` on unlimited data.

    Item ``i`` of epoch ``e`` is deterministic given the seed. Yields (x (b, B, B, B, 1), one-hot y). Classes are
    the structures (labels 1..K) plus the negative class 0 when enabled; output index = sorted label order.
    """

    def __init__(self, structures: list[Structure], config: SimConfig | None = None, batch_size: int = 64,
                 steps_per_epoch: int = 100, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.config = config or SimConfig()
        self.library = StructureLibrary(structures)
        self.class_names = class_names_of(structures, self.config)
        self.labels = np.array(sorted(self.class_names))
        self.batch_size = batch_size
        self.steps = steps_per_epoch
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, idx: int):
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        labels = balanced_labels(self.labels, self.batch_size, rng)
        x = np.stack([simulate_subtomogram(self.library, int(lab), self.config, rng)[0] for lab in labels])
        y = np.zeros((len(labels), len(self.labels)), np.float32)
        y[np.arange(len(labels)), np.searchsorted(self.labels, labels)] = 1.0
        return x[..., None], y
