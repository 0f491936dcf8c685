"""A Keras data source of class-balanced batches simulated on the fly (imports Keras, so kept apart)."""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..batches import SeededBatches, one_hot
from ..io.files import atomic_path
from ..log import logger
from ..volume import random_wedge_symmetric_view
from .config import SimConfig, one_acquisition
from .dataset import balanced_labels, binding_states_of, class_draw_weights, class_names_of, draw_fresh_seeds
from .descriptors import N_DESCRIPTORS, class_descriptors, shape_descriptors
from .procedural import ProceduralStructure
from .scene import StructureLibrary, simulate_subtomogram
from .structures import Structure


class SimulatedBatches(SeededBatches):
    """Class-balanced batches of freshly simulated sub-tomograms, for ``model.fit`` on unlimited data.

    Item ``i`` of epoch ``e`` is deterministic given the seed. Yields (x (b, B, B, B, 1), one-hot y). Classes are
    the structures (labels 1..K) plus the negative class 0 when enabled; output index = sorted label order.
    ``map_weight``: each class made from a map or model file (not by code, :func:`made_by_code`) is drawn this
    many times as often as one made by code (1: every class equally often); ``negative_weight``: the negatives
    (class 0, no central particle) likewise.
    ``reuse`` r > 1: each simulated batch is trained on r times, later uses a few steps apart with every
    sub-tomogram turned by a random wedge-symmetric rotation (:func:`replayed_item`); the batches are the same
    whether or not ``cache_dir`` lets the workers pass a made batch on instead of simulating it again.
    ``fresh_share`` f > 0 (with ``instance_pairs``): a share f of each batch's pairs are two sub-tomograms of a
    procedural structure drawn once (a seed from :data:`~.dataset.FRESH_SEEDS`, never a class): their class rows
    are zero and their sample weight 0, so only the contrastive loss learns from them; batches are then
    (x, y, sample weights). ``fresh_mass_band`` b > 0: a batch's drawn-once structures are within a factor
    exp(b) in mass of its first one (:func:`~.dataset.draw_fresh_seeds`), hard negatives for one another.
    ``fresh_mirrors`` s > 0: a share s of them come with their own mirror image (:func:`fresh_mirror_pairs`).
    ``fresh_bound`` s > 0: a share s of them come with their own copy bound to a membrane (``NAME@membrane``), a
    negative that differs in binding state only (:func:`fresh_companion_counts`).
    ``one_acquisition_per_batch``: every sub-tomogram of a batch shares one draw of the acquisition
    (:func:`~.config.one_acquisition`), as the picks of one tomogram do: a pair then differs by pose, position,
    neighbours and noise only, and the batch's other structures are told apart under the same microscope.
    ``one_acquisition_per_view`` (with ``instance_pairs``): each half of a batch (each pair's first view, then its
    second) shares one draw of the acquisition, the two halves another each: a pair spans two microscopes, and
    its negatives share the anchor's microscope or the positive's.
    ``with_shape``: a last target, each sub-tomogram's structure's shape descriptors (:mod:`.descriptors`; zeros and
    weight 0 for the negatives); batches are then (x, targets, per-output sample weights).
    """

    def __init__(
        self,
        structures: list[Structure],
        config: SimConfig | None = None,
        batch_size: int = 64,
        steps_per_epoch: int = 100,
        seed: int = 0,
        specs: list[str] | None = None,
        map_weight: float = 1.0,
        negative_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(steps_per_epoch, seed, **kwargs)
        self.specs = specs
        self.config = config or SimConfig()
        self.library = StructureLibrary(structures)
        self.class_names = class_names_of(structures, self.config)
        self.labels = np.array(sorted(self.class_names))
        self.batch_size = batch_size
        self.with_binding = False
        self.with_shape = False
        self._class_shapes: np.ndarray | None = None
        self.view_pairs = False  # second half of each batch: a wedge-symmetric view of the first half
        self.instance_pairs = False  # second half: other sub-tomograms of the first half's structures
        self._states = self.binding_states()
        self.map_weight = float(map_weight)
        self.negative_weight = float(negative_weight)
        weighted = self.map_weight != 1.0 or self.negative_weight != 1.0
        self.draw_weights = self.class_draw_weights() if weighted else None
        self.reuse = 1
        self.cache_dir: str | None = None
        self.fresh_share = 0.0
        self.fresh_mass_band = 0.0
        self.fresh_mirrors = 0.0
        self.fresh_bound = 0.0
        self.one_acquisition_per_batch = False
        self.one_acquisition_per_view = False

    def __getitem__(self, idx: int):
        source = replayed_item(idx, self.reuse)
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        if source is None:
            batch = self.make_batch(rng)
            if self.reuse > 1 and self.cache_dir:
                with atomic_path(self._cached_path(idx), overwrite=True) as tmp:  # a reuse never reads half a batch
                    tmp.write_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            return batch
        return self._replay(self._made_batch(source, last_use=replayed_item(idx + REPLAY_LAG, self.reuse) is None), rng)

    def _cached_path(self, idx: int) -> Path:
        return Path(self.cache_dir or ".") / f"{self.seed}_{self.epoch}_{idx}.pkl"

    def _made_batch(self, idx: int, last_use: bool):
        """Item ``idx``'s batch: from the cache once a worker has made it (waiting while it works), else made again."""
        if self.cache_dir:
            path, deadline = self._cached_path(idx), time.monotonic() + REPLAY_WAIT_S
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            try:  # gone already only if an earlier use was overtaken by the last one (reuse > 2): made again
                batch = pickle.loads(path.read_bytes())
            except FileNotFoundError:
                pass
            else:
                if last_use:
                    path.unlink(missing_ok=True)
                return batch
            logger.warning(f"batch {idx} of epoch {self.epoch} made twice: no worker had it in {path.parent}")
        return self.make_batch(np.random.default_rng([self.seed, self.epoch, idx]))

    def on_epoch_end(self) -> None:
        if self.cache_dir:  # a fresh batch near the epoch's end has no later use in it
            for path in Path(self.cache_dir).glob(f"{self.seed}_{self.epoch}_*.pkl"):
                path.unlink(missing_ok=True)
        super().on_epoch_end()

    @staticmethod
    def _replay(batch, rng: np.random.Generator):
        x, *targets = batch
        return random_wedge_symmetric_view(x[..., 0], rng)[..., None], *targets

    def class_draw_weights(self) -> np.ndarray:
        """Per output index (sorted labels): ``map_weight`` for a class read from a file, ``negative_weight`` for
        the negatives, 1 otherwise."""
        return class_draw_weights(self.library.structures, self.labels, self.map_weight, self.negative_weight)

    def binding_states(self) -> np.ndarray:
        """Per output index (sorted labels), the central particle's binding code (``binding_states_of``)."""
        states = binding_states_of(self.library.structures, self.config)
        return np.array([states[int(label)] for label in self.labels], int)

    def make_batch(self, rng: np.random.Generator):
        configs = self._acquisitions(rng)
        if self.instance_pairs and self.fresh_share > 0:
            return self._pairs_with_fresh_structures(rng, configs)
        paired = self.view_pairs or self.instance_pairs
        labels = balanced_labels(
            self.labels, self.batch_size // 2 if paired else self.batch_size, rng, self.draw_weights
        )
        x = self._simulate(labels, rng, configs[0])
        if self.view_pairs:
            x, labels = np.concatenate([x, random_wedge_symmetric_view(x, rng)]), np.concatenate([labels, labels])
        elif self.instance_pairs:
            x, labels = np.concatenate([x, self._simulate(labels, rng, configs[1])]), np.concatenate([labels, labels])
        return self._as_batch(x[..., None], one_hot(labels, self.labels), None, *self._shapes_of(labels))

    def _acquisitions(self, rng: np.random.Generator) -> tuple[SimConfig, SimConfig]:
        """The configs of a batch's first half and second half: the ranged config for both (each sub-tomogram
        draws its own microscope), one fixed draw for both (per batch) or one each (per view)."""
        if self.one_acquisition_per_batch:
            config = one_acquisition(self.config, rng)
            return config, config
        if self.one_acquisition_per_view:
            return one_acquisition(self.config, rng), one_acquisition(self.config, rng)
        return self.config, self.config

    def _simulate(self, labels: np.ndarray, rng: np.random.Generator, config: SimConfig) -> np.ndarray:
        return np.stack([simulate_subtomogram(self.library, int(lab), config, rng)[0] for lab in labels])

    def _pairs_with_fresh_structures(self, rng: np.random.Generator, configs: tuple[SimConfig, SimConfig]):
        """Pairs (row i, row i + B/2): the classes' first, then ``fresh_share`` of them of structures drawn once."""
        pairs = self.batch_size // 2
        n_fresh = fresh_pairs_per_batch(pairs, self.fresh_share)
        labels = balanced_labels(self.labels, pairs - n_fresh, rng, self.draw_weights)
        seeds = draw_fresh_seeds(n_fresh, rng, self.fresh_mass_band)
        fresh = self._fresh_structures(seeds)
        halves = [
            np.concatenate([self._simulate(labels, rng, config), self._simulate_fresh(fresh, rng, config)])
            for config in configs
        ]
        y_half = np.concatenate([one_hot(labels, self.labels), np.zeros((n_fresh, len(self.labels)), np.float32)])
        w_half = np.concatenate([np.ones(len(labels), np.float32), np.zeros(n_fresh, np.float32)])
        x, y, w = np.concatenate(halves)[..., None], np.concatenate([y_half, y_half]), np.concatenate([w_half, w_half])
        if not self.with_shape:
            return self._as_batch(x, y, w, None, None)
        shapes, shape_w = self._shapes_of(labels)
        fresh_shapes = np.array([shape_descriptors(s) for s in fresh], np.float32).reshape(-1, N_DESCRIPTORS)
        shapes = np.concatenate([shapes, fresh_shapes])
        shape_w = np.concatenate([shape_w, np.ones(n_fresh, np.float32)])
        return self._as_batch(x, y, w, np.concatenate([shapes, shapes]), np.concatenate([shape_w, shape_w]))

    def _as_batch(self, x, y, weights, shapes, shape_weights):
        """(x, y[, weights]) or (x, (y, binding states[, shapes]), per-output weights): what the model's outputs
        ask. ``weights`` None: every row counts for the class and binding losses."""
        targets, per_output = [y], [weights]
        if self.with_binding:
            targets.append(binding_one_hot(y, self._states))
            per_output.append(weights)
        if self.with_shape:
            targets.append(shapes)
            per_output = [np.ones(len(y), np.float32) if w is None else w for w in per_output] + [shape_weights]
        if len(targets) == 1:
            return (x, y) if weights is None else (x, y, weights)
        return (x, tuple(targets)) if per_output[0] is None else (x, tuple(targets), tuple(per_output))

    def _shapes_of(self, labels: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The shape descriptors of ``labels``' structures and their weights (0 for the negatives); None, None
        unless asked."""
        if not self.with_shape:
            return None, None
        return self.class_shapes()[np.searchsorted(self.labels, labels)], (labels > 0).astype(np.float32)

    def class_shapes(self) -> np.ndarray:
        """Per output index (sorted labels), the class's shape descriptors (zeros for the negatives), once."""
        if self._class_shapes is None:
            self._class_shapes = class_descriptors(self.library.structures, self.labels)
        return self._class_shapes

    def _fresh_structures(self, seeds: np.ndarray) -> list[Structure]:
        """The drawn-once structures of ``seeds``: the originals first, then the first ones' mirror images, then
        the next ones' membrane-bound copies (their companions, as many as :func:`fresh_companion_counts` says)."""
        mirrors, bound = fresh_companion_counts(len(seeds), self.fresh_mirrors, self.fresh_bound)
        voxel = self.config.voxel_size
        originals = seeds[: len(seeds) - mirrors - bound]
        fresh: list[Structure] = [ProceduralStructure(int(seed), voxel) for seed in originals]
        fresh += [ProceduralStructure(int(seed), voxel, mirrored=True) for seed in seeds[:mirrors]]
        fresh += [ProceduralStructure(int(seed), voxel).membrane_bound() for seed in seeds[mirrors : mirrors + bound]]
        return fresh

    def _simulate_fresh(
        self, structures: Sequence[Structure], rng: np.random.Generator, config: SimConfig
    ) -> np.ndarray:
        volumes = []
        for structure in structures:
            with self.library.visiting(structure) as label:
                volumes.append(simulate_subtomogram(self.library, label, config, rng)[0])
        box = self.config.box_size
        return np.stack(volumes) if volumes else np.zeros((0, box, box, box), np.float32)

    def describe(self) -> str:
        """What the batches are drawn from (for the model card)."""
        n_proc = sum(1 for s in self.library.structures if hasattr(s, "molecule"))
        weight = f", classes from files drawn {self.map_weight:g}x as often" if self.map_weight != 1.0 else ""
        weight += f", the negatives drawn {self.negative_weight:g}x as often" if self.negative_weight != 1.0 else ""
        weight += ", one acquisition per batch" if self.one_acquisition_per_batch else ""
        weight += ", one acquisition per view" if self.one_acquisition_per_view else ""
        weight += f", drawn-once structures within ln {self.fresh_mass_band:g} in mass" if self.fresh_mass_band else ""
        weight += f", {self.fresh_mirrors:g} of them beside their mirror image" if self.fresh_mirrors else ""
        weight += f", {self.fresh_bound:g} of them beside their membrane-bound copy" if self.fresh_bound else ""
        return (
            f"simulated on the fly: {len(self.class_names)} classes ({n_proc} procedural){weight}, "
            f"specs {self.specs or self.library.names[:5]}"
        )


REPLAY_LAG = 4  # steps between two uses of one simulated batch (the workers have made it by then)
REPLAY_WAIT_S = 60.0  # how long a reuse waits for a worker still making its batch, before making it again


def fresh_pairs_per_batch(pairs: int, share: float) -> int:
    """How many of a batch's ``pairs`` are of structures drawn once, for a ``share`` (the last ones of each half)."""
    return min(pairs, int(round(share * pairs)))


def fresh_mirror_pairs(n_fresh: int, share: float) -> int:
    """How many of a batch's ``n_fresh`` structures drawn once are followed by their mirror image, for a ``share``
    of the structures in such pairs (each pair two of them)."""
    return min(n_fresh // 2, int(round(share * n_fresh / 2)))


def fresh_companion_counts(n_fresh: int, mirror_share: float, bound_share: float) -> tuple[int, int]:
    """How many of a batch's ``n_fresh`` structures drawn once are companions of others: mirror images
    (:func:`fresh_mirror_pairs`), then membrane-bound copies (a ``bound_share`` of the pairs there could be, in
    what the mirrors leave: every companion has its own original, so together at most half of ``n_fresh``)."""
    mirrors = fresh_mirror_pairs(n_fresh, mirror_share)
    return mirrors, min(int(round(bound_share * n_fresh / 2)), n_fresh // 2 - mirrors)


def replayed_item(idx: int, reuse: int, lag: int = REPLAY_LAG) -> int | None:
    """The earlier item whose batch item ``idx`` uses again, or None when ``idx`` is simulated afresh.

    Blocks of ``lag`` items: block b is fresh when b % reuse == 0, else the block ``b % reuse`` blocks back seen
    again. A lag of a few steps keeps one batch's uses apart and lets parallel workers finish it first.
    """
    if reuse <= 1:
        return None
    back = (idx // lag) % reuse
    return idx - back * lag if back else None


def binding_one_hot(y: np.ndarray, states: np.ndarray) -> np.ndarray:
    """One-hot binding states of one-hot class rows ``y``, given each class's state."""
    return np.eye(3, dtype=np.float32)[states[np.argmax(y, axis=1)]]
