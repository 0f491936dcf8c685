"""The seven adaptation methods, each built and compiled once, then trained one round at a time (``Method``), and
the models the paired methods train (simulated and user batches through one network)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from ..model.classifier import EMBEDDING_LAYER, OUTPUT_LAYER, CosineClassifier, class_output, model_input
from ..model.losses import MarginSoftmaxLoss
from .copies import pick_batches
from .features import neighbour_targets
from .guard import AdaptReport
from .objectives import CoralAlignment, DomainClassifier, InfoMaxLoss, NeighbourAttractionLoss, ReversalSchedule
from .simulated import (
    LIKE_STRUCTURES,
    anchor_pool,
    anchored_batches,
    domain_batches,
    matched_simulation,
    with_user_batches,
)

METHODS = ("pseudolabel", "infomax", "like", "coral", "neighbours", "anchored", "dann")
ANCHOR_WEIGHT = 1.0  # ``anchored``: weight of the simulated CosFace term against the neighbours' pull
DOMAIN_WEIGHT = 1.0  # ``dann``: weight of the domain classifier's loss (half on each domain) against CosFace's 1


def _train_round(model, volumes, labels, n_classes, steps, batch, rng) -> float:
    return _fit_round(model, volumes, np.eye(n_classes, dtype=np.float32)[labels], steps, batch, rng)


def _fit_round(model, volumes, targets, steps, batch, rng, noise: float = 0.0, augmentation: str = "flip") -> float:
    batches = pick_batches(volumes, targets, batch, rng, noise, augmentation)  # drawn at random: nothing to shuffle
    history = model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return float(history.history["loss"][-1])


@dataclass
class Setup:
    """What every method's rounds work on: the models, the normalised picks and the settings."""

    classifier: keras.Model
    network: keras.Model
    card: dict
    vols: np.ndarray
    rng: np.random.Generator
    k: int
    rounds: int
    steps: int
    batch_size: int
    learning_rate: float
    seed: int
    structures: list[str] | None
    neighbours: int
    noise: float
    one_way_weight: float
    dispersion: float
    anchor_weight: float
    augmentation: str

    @property
    def box(self) -> int:
        return int(self.card["box_size"])

    def adam(self) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(self.learning_rate)


class Method:
    """One adaptation method: built and compiled once (``__init__``), then trained one round at a time on the
    features of the last round (``bank``) and their k-means labels; returns the round's last loss."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        self.s = s

    def fit_round(self, r: int, bank: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError


def _cosface() -> MarginSoftmaxLoss:
    return MarginSoftmaxLoss("cosface", 16.0, 0.1)


def _last_loss(fitted) -> float:
    return float(fitted.history["loss"][-1])


class _PseudoLabels(Method):
    """A fresh cosine head on the picks' k-means clusters (CosFace), re-clustered each round."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        head = CosineClassifier(s.k, name="adapt_head", dtype="float32")
        self.model = keras.Model(model_input(s.network), head(s.network.get_layer(EMBEDDING_LAYER).output))
        self.model.compile(s.adam(), _cosface(), jit_compile=False)

    def fit_round(self, r, bank, labels):
        s = self.s
        return _train_round(self.model, s.vols, labels, s.k, s.steps, s.batch_size, s.rng)


class _Neighbours(Method):
    """Each pick pulled towards its nearest neighbours' mean feature, pushed from the batch's others (AaD)."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        s.network.compile(s.adam(), NeighbourAttractionLoss(s.dispersion), jit_compile=False)

    def fit_round(self, r, bank, labels):
        s = self.s
        targets = neighbour_targets(bank, s.neighbours, s.one_way_weight)
        return _fit_round(s.network, s.vols, targets, s.steps, s.batch_size, s.rng, s.noise, s.augmentation)


class _Anchored(Method):
    """``neighbours`` on the picks plus CosFace through the model's own frozen class directions on simulated
    sub-tomograms of its code-made classes."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        self.anchor = anchor_pool(s.vols, s.card, s.structures, s.seed)
        report.estimate = self.anchor.estimate
        self.model = _anchored_model(s.classifier, s.network, s.box)
        self.model.compile(
            s.adam(),
            [_cosface(), NeighbourAttractionLoss(s.dispersion)],
            loss_weights=[s.anchor_weight, 1.0],
            jit_compile=False,
        )

    def fit_round(self, r, bank, labels):
        s = self.s
        targets = neighbour_targets(bank, s.neighbours, s.one_way_weight)
        pairs = anchored_batches(self.anchor, s.vols, targets, s.batch_size, s.rng, s.noise)
        return _last_loss(self.model.fit(pairs, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False))


class _DomainAdversarial(Method):
    """``anchored``'s simulated classes, plus a gradient-reversed classifier of the two domains (DANN)."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        self.anchor = anchor_pool(s.vols, s.card, s.structures, s.seed)
        report.estimate = self.anchor.estimate
        self.model, critic = _domain_adversarial_model(s.classifier, s.network, s.box)
        self.reversal = ReversalSchedule(critic, s.rounds * s.steps)
        binary = keras.losses.BinaryCrossentropy(from_logits=True)
        self.model.compile(
            s.adam(),
            [_cosface(), binary, binary],
            loss_weights=[1.0, DOMAIN_WEIGHT / 2, DOMAIN_WEIGHT / 2],
            jit_compile=False,
        )

    def fit_round(self, r, bank, labels):
        s = self.s
        batches = domain_batches(self.anchor, s.vols, s.batch_size, s.rng)
        fitted = self.model.fit(
            batches, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False, callbacks=[self.reversal]
        )
        return _last_loss(fitted)


class _MatchedSimulation(Method):
    """``like``: a fresh cosine head trained on sub-tomograms simulated around the picks' acquisition."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        structures = s.structures or list(LIKE_STRUCTURES)
        self.simulated = matched_simulation(s.vols, s.card, structures, s.batch_size, s.steps, s.seed)
        report.estimate = self.simulated.estimate
        self.head = CosineClassifier(len(self.simulated.labels), name="adapt_head", dtype="float32")
        self.model = self.build()
        self.model.compile(s.adam(), _cosface(), jit_compile=False)

    def build(self) -> keras.Model:
        network = self.s.network
        return keras.Model(model_input(network), self.head(network.get_layer(EMBEDDING_LAYER).output))

    def fit_round(self, r, bank, labels):
        self.simulated.epoch = r
        return _last_loss(self.model.fit(self.simulated, epochs=1, verbose=0))


class _Coral(_MatchedSimulation):
    """``like``'s training plus CORAL between each simulated batch's embeddings and a batch of the picks'."""

    def build(self) -> keras.Model:
        return _aligned_model(self.s.network, self.head, self.s.box)

    def fit_round(self, r, bank, labels):
        s = self.s
        self.simulated.epoch = r
        pairs = with_user_batches(self.simulated, s.vols, s.rng)
        return _last_loss(self.model.fit(pairs, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False))


class _InfoMax(Method):
    """The model's own class head kept; its predictions on the picks made confident and diverse (SHOT)."""

    def __init__(self, s: Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        for layer in s.classifier.layers:
            layer.trainable = layer.trainable and layer.name != OUTPUT_LAYER
        self.model = keras.Model(model_input(s.classifier), class_output(s.classifier))  # without a binding output
        self.model.compile(s.adam(), InfoMaxLoss(), jit_compile=False)
        self.n_out = int(self.model.output.shape[-1])

    def fit_round(self, r, bank, labels):
        s = self.s
        return _train_round(self.model, s.vols, np.zeros(len(s.vols), int), self.n_out, s.steps, s.batch_size, s.rng)


METHOD_OF = {
    "pseudolabel": _PseudoLabels,
    "infomax": _InfoMax,
    "like": _MatchedSimulation,
    "coral": _Coral,
    "neighbours": _Neighbours,
    "anchored": _Anchored,
    "dann": _DomainAdversarial,
}


def _aligned_model(network: keras.Model, head: keras.layers.Layer, box: int) -> keras.Model:
    """(simulated batch, user batch) -> class cosines of the simulated batch, with the CORAL loss between the
    two batches' embeddings (one network, shared weights)."""
    sim_in = keras.Input((box, box, box, 1), name="simulated")
    user_in = keras.Input((box, box, box, 1), name="user")
    aligned = CoralAlignment(name="coral")(network(sim_in), network(user_in))
    return keras.Model([sim_in, user_in], head(aligned))


def _anchored_model(classifier: keras.Model, network: keras.Model, box: int) -> keras.Model:
    """(simulated batch, user batch) -> (the model's own class cosines of the simulated batch, the user batch's
    embeddings); one network, shared weights; the class directions frozen, so they anchor the geometry."""
    head = classifier.get_layer(OUTPUT_LAYER)
    head.trainable = False
    sim_in = keras.Input((box, box, box, 1), name="simulated")
    user_in = keras.Input((box, box, box, 1), name="user")
    return keras.Model([sim_in, user_in], [head(network(sim_in)), network(user_in)])


def _domain_adversarial_model(
    classifier: keras.Model, network: keras.Model, box: int
) -> tuple[keras.Model, DomainClassifier]:
    """(simulated batch, user batch) -> (the model's own class cosines of the simulated batch, frozen as in
    ``anchored``; the domain logits of each batch through one gradient-reversed classifier), and that classifier."""
    head = classifier.get_layer(OUTPUT_LAYER)
    head.trainable = False
    critic = DomainClassifier(name="domain")
    sim_in = keras.Input((box, box, box, 1), name="simulated")
    user_in = keras.Input((box, box, box, 1), name="user")
    simulated, user = network(sim_in), network(user_in)
    return keras.Model([sim_in, user_in], [head(simulated), critic(simulated), critic(user)]), critic
