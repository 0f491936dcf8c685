"""Unsupervised adaptation of f_theta to the user's own sub-tomograms (no labels; no files but the picks).

Three families, seven methods:

- ``pseudolabel`` (k-means pseudo-labels refined over rounds, as DISCA does on real data): embed the
  picks, cluster them (k-means on L2-normalised features at the label-free k), train the embedding network with
  a fresh cosine head on those clusters (CosFace margin, the training augmentation), re-cluster, repeat.
- ``infomax`` (information maximisation, as SHOT): keep the model's own class head fixed and train the
  network so its predictions on the user's data are confident (low entropy per particle) and diverse (high
  entropy of the mean prediction); measured 0.11 below its input on a design set (session 27): not recommended.
- ``like`` (input matching): estimate from the picks what the simulator can reproduce (missing wedge, low-pass,
  contrast polarity; ``simulate.like``), then train on labelled sub-tomograms simulated around it (structures
  made by code by default, so nothing but the picks is needed) with a fresh cosine head and CosFace.
- ``neighbours`` (the default: of the methods measured, the only one whose candidate raised every protocol domain,
  docs/adaptation.md; self-training on the user's data, as AaD, "attracting and dispersing"): each pick's embedding
  is pulled towards the mean of its nearest neighbours' (in the features at the start of the round) and pushed
  away from the other picks of its batch, so the neighbourhoods that are already mostly one structure tighten
  into clusters; neighbours are found again each round.
- ``coral`` (feature alignment, Deep CORAL with the means): ``like``'s simulated training, plus a loss that
  pulls the mean and covariance of the L2-normalised embeddings of each simulated batch onto those of a batch
  of the user's picks, so the classes learned in simulation are laid out the same way on the user's data.
- ``anchored`` (self-training held by simulation, as the issue words adaptation: the user's unlabelled picks
  together with labelled simulated ones): ``neighbours`` on the picks, plus CosFace through the model's OWN class
  directions (frozen) on sub-tomograms of its own code-made classes simulated around the picks' acquisition
  (``like``'s estimate), meant to keep the class structure learned in simulation while the picks are pulled
  together; measured below ``neighbours`` on a design set (session 26, docs/adaptation.md): not the default.
- ``dann`` (feature alignment by a domain classifier with gradient reversal, DANN, Ganin et al. 2016):
  ``anchored``'s simulated sub-tomograms and frozen class directions, plus a small classifier that tells the
  user's picks from the simulated ones through a gradient reversal, so the network learns features in which the
  two domains cannot be told apart while the simulated classes stay separated; measured below its input on a
  design set (session 29: best V 0.915 -> 0.892 after one round, lower each round after): not recommended.

Guards, so ``adapt`` never silently makes things worse: a round stops the adaptation when the clustering
collapses (one cluster over 90 % of the picks, or the features' spread falls below a quarter of the input
model's); and two label-free scores are compared before and after: the silhouette of k-means on the
L2-normalised features at the input model's label-free k, and the stability of that clustering under
resampling (``cluster.stability``), after every round. The round kept is the one with the best silhouette among
those whose stability did not fall by more than ``STABILITY_TOLERANCE``, and only when that silhouette beats the
input's; otherwise the input model is written. The adapted model's card records what it was adapted on and both
scores, per round. Both scores reward any tight partition, a wrong one too (``infomax`` raised both on a design
set while its V-measure fell 0.11), so every round also records how many of each pick's nearest neighbours in
the input's features it kept (``neighbourhood_overlap``), and ``adapt`` warns when the written model kept fewer
than ``NEIGHBOURHOOD_WARNING`` times the share the input's own neighbourhoods keep between one view of the picks
and the mean of four (how much they move under a change the features should ignore: less on a set of well
separated structures than on a crowded one, where a good adaptation changes more of them too).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import ops
from sklearn import metrics
from sklearn.cluster import KMeans

from .cluster import normalise_features, select_k, stability, sweep_k
from .embed import resolve_precision
from .io.files import InputError
from .log import logger
from .model.card import load_model, save_model
from .model.classifier import (
    EMBEDDING_LAYER,
    OUTPUT_LAYER,
    CosineClassifier,
    class_output,
    embedding_model,
    leading_convolutions,
    model_input,
    with_dtype_policy,
)
from .model.losses import MarginSoftmaxLoss
from .threads import numeric_threads_on_free_cores
from .train import augment
from .volume import WEDGE_VIEW_AXES, normalise, phase_randomised, random_wedge_symmetric_view, wedge_symmetric_views

METHODS = ("pseudolabel", "infomax", "like", "coral", "neighbours", "anchored", "dann")
AUGMENTATIONS = ("flip", "views")  # ``augmented``: the training copies of the picks
LIKE_STRUCTURES = ("procedural:200:0",)  # made by code: no files needed on the user's side
COLLAPSE_LARGEST = 0.9  # a cluster holding more than this fraction of the picks: collapse
COLLAPSE_SPREAD = 0.25  # features' spread below this fraction of the input model's: collapse
CORAL_WEIGHT = 10.0  # alignment loss weight: ~3 at the start on the strong-CTF domain, as CosFace's own
NEIGHBOURS = 30  # ``neighbours``: nearest neighbours each pick is pulled towards (AaD's K; 5 before session 16)
DISPERSION = 1.0  # ``neighbours``: weight of the push away from the batch's other picks (AaD's lambda)
ANCHOR_WEIGHT = 1.0  # ``anchored``: weight of the simulated CosFace term against the neighbours' pull
ANCHOR_POOL = 1600  # ``anchored``, ``dann``: simulated sub-tomograms made once, drawn (augmented) 16 a step
DOMAIN_WEIGHT = 1.0  # ``dann``: weight of the domain classifier's loss (half on each domain) against CosFace's 1
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


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class InfoMaxLoss(keras.losses.Loss):
    """Mean per-sample entropy minus the entropy of the batch's mean prediction (SHOT's objective)."""

    def __init__(self, diversity: float = 1.0, name: str = "infomax", **kwargs):
        super().__init__(name=name, **kwargs)
        self.diversity = float(diversity)

    def call(self, y_true, y_pred):
        p = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)
        per_sample = -ops.sum(p * ops.log(p), axis=-1)
        mean = ops.mean(p, axis=0)
        spread = -ops.sum(mean * ops.log(mean))
        return per_sample - self.diversity * spread  # Keras averages over the batch

    def get_config(self):
        return {**super().get_config(), "diversity": self.diversity}


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class NeighbourAttractionLoss(keras.losses.Loss):
    """AaD on unit embeddings: minus the cosine to the neighbours' mean feature (``y_true``) plus
    ``dispersion`` x the mean cosine to the batch's other picks."""

    def __init__(self, dispersion: float = DISPERSION, name: str = "neighbour_attraction", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dispersion = float(dispersion)

    def call(self, y_true, y_pred):
        z = ops.cast(y_pred, "float32")
        z = z / ops.maximum(ops.norm(z, axis=-1, keepdims=True), 1e-12)
        attract = ops.sum(z * ops.cast(y_true, "float32"), axis=-1)
        n = ops.cast(ops.shape(z)[0], "float32")
        others = (ops.sum(ops.matmul(z, ops.transpose(z)), axis=-1) - 1.0) / ops.maximum(n - 1.0, 1.0)
        return -attract + self.dispersion * others

    def get_config(self):
        return {**super().get_config(), "dispersion": self.dispersion}


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


def coral_distance(a, b):
    """Squared distance between the means plus that between the covariances (Frobenius) of two batches of
    L2-normalised embeddings (rows): Deep CORAL's alignment with the first moments added."""
    a = ops.cast(a, "float32")
    b = ops.cast(b, "float32")
    a = a / ops.maximum(ops.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / ops.maximum(ops.norm(b, axis=-1, keepdims=True), 1e-12)
    ma, mb = ops.mean(a, axis=0), ops.mean(b, axis=0)
    ca = ops.matmul(ops.transpose(a - ma), a - ma) / ops.cast(ops.shape(a)[0] - 1, "float32")
    cb = ops.matmul(ops.transpose(b - mb), b - mb) / ops.cast(ops.shape(b)[0] - 1, "float32")
    return ops.sum(ops.square(ma - mb)) + ops.sum(ops.square(ca - cb))


class CoralAlignment(keras.layers.Layer):
    """Adds ``weight`` x :func:`coral_distance` (simulated, user embeddings) to the model's loss; passes the
    simulated embeddings on to the class head."""

    def __init__(self, weight: float = CORAL_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, simulated, user):
        self.add_loss(self.weight * coral_distance(simulated, user))
        return simulated


class DomainClassifier(keras.layers.Layer):
    """Gradient reversal, then a small network on the unit embedding: the logit that it came from the user's
    picks. Forward the reversal is the identity; backward it multiplies the gradient by ``-strength``, so this
    layer learns to tell the domains apart while the network before it learns to make them alike (DANN).
    ``strength`` (not trained) is set from outside: :class:`ReversalSchedule`."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.hidden = [keras.layers.Dense(units, activation="relu", dtype="float32") for _ in range(2)]
        self.logit = keras.layers.Dense(1, dtype="float32")
        self.strength = self.add_weight(shape=(), initializer="zeros", trainable=False, name="strength")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden:
            layer.build(shape)
            shape = (*shape[:-1], layer.units)
        self.logit.build(shape)

    def call(self, embeddings):
        x = ops.cast(embeddings, "float32")
        x = x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)
        x = ops.stop_gradient((1.0 + self.strength) * x) - self.strength * x  # value x, gradient -strength
        for layer in self.hidden:
            x = layer(x)
        return self.logit(x)


class ReversalSchedule(keras.callbacks.Callback):
    """DANN's schedule for the reversal's strength: 2 / (1 + exp(-10 p)) - 1 at the fraction p of all the
    adaptation's steps done, from 0 (the domain classifier learns first) to nearly 1; counts across rounds."""

    def __init__(self, layer: DomainClassifier, total_steps: int):
        super().__init__()
        self.layer, self.total_steps, self.done = layer, max(1, total_steps), 0

    def on_train_batch_begin(self, batch, logs=None):
        p = self.done / self.total_steps
        self.layer.strength.assign(2.0 / (1.0 + np.exp(-10.0 * p)) - 1.0)
        self.done += 1


def training_precision(precision: str) -> str:
    """'float32' or 'bfloat16' ('auto': bfloat16 where the CPU has bf16 arithmetic, as ``embed``)."""
    chosen = resolve_precision(precision)
    if chosen not in ("float32", "bfloat16"):
        raise InputError(f"adapt trains in float32 or bfloat16, not {chosen!r}")
    return chosen


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


def label_free_score(features: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> tuple[float, np.ndarray]:
    """(silhouette of k-means at ``k`` on L2 features, the cluster labels)."""
    labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(features)
    sample = min(len(features), 5000)
    return float(metrics.silhouette_score(features, labels, sample_size=sample, random_state=seed)), labels


def silhouette_over_k(features: np.ndarray, ks: range, seed: int = 0) -> float:
    """Mean silhouette of k-means over ``ks`` (L2 features): the clustering's quality at every resolution, not
    only at one k that may merge structures."""
    return float(np.mean([label_free_score(features, k, seed, n_init=3)[0] for k in ks]))


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


def collapsed(features: np.ndarray, labels: np.ndarray, reference_spread: float) -> str | None:
    """Why the clustering collapsed, or None."""
    largest = np.bincount(labels).max() / len(labels)
    if largest > COLLAPSE_LARGEST:
        return f"one cluster holds {largest:.0%} of the picks"
    spread = float(features.std(axis=0).sum())
    if spread < COLLAPSE_SPREAD * reference_spread:
        return f"the features' spread fell to {spread / reference_spread:.0%} of the input model's"
    return None


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


def _batches(
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


def _train_round(model, volumes, labels, n_classes, steps, batch, rng) -> float:
    return _fit_round(model, volumes, np.eye(n_classes, dtype=np.float32)[labels], steps, batch, rng)


def _fit_round(model, volumes, targets, steps, batch, rng, noise: float = 0.0, augmentation: str = "flip") -> float:
    batches = _batches(volumes, targets, batch, rng, noise, augmentation)  # drawn at random already: nothing to shuffle
    history = model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return float(history.history["loss"][-1])


@dataclass
class _Setup:
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


class _Method:
    """One adaptation method: built and compiled once (``__init__``), then trained one round at a time on the
    features of the last round (``bank``) and their k-means labels; returns the round's last loss."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        self.s = s

    def fit_round(self, r: int, bank: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError


def _cosface() -> MarginSoftmaxLoss:
    return MarginSoftmaxLoss("cosface", 16.0, 0.1)


def _last_loss(fitted) -> float:
    return float(fitted.history["loss"][-1])


class _PseudoLabels(_Method):
    """A fresh cosine head on the picks' k-means clusters (CosFace), re-clustered each round."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        head = CosineClassifier(s.k, name="adapt_head", dtype="float32")
        self.model = keras.Model(model_input(s.network), head(s.network.get_layer(EMBEDDING_LAYER).output))
        self.model.compile(s.adam(), _cosface(), jit_compile=False)

    def fit_round(self, r, bank, labels):
        s = self.s
        return _train_round(self.model, s.vols, labels, s.k, s.steps, s.batch_size, s.rng)


class _Neighbours(_Method):
    """Each pick pulled towards its nearest neighbours' mean feature, pushed from the batch's others (AaD)."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        s.network.compile(s.adam(), NeighbourAttractionLoss(s.dispersion), jit_compile=False)

    def fit_round(self, r, bank, labels):
        s = self.s
        targets = neighbour_targets(bank, s.neighbours, s.one_way_weight)
        return _fit_round(s.network, s.vols, targets, s.steps, s.batch_size, s.rng, s.noise, s.augmentation)


class _Anchored(_Method):
    """``neighbours`` on the picks plus CosFace through the model's own frozen class directions on simulated
    sub-tomograms of its code-made classes."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        self.anchor = _anchor_pool(s.vols, s.card, s.structures, s.seed)
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
        pairs = _anchored_batches(self.anchor, s.vols, targets, s.batch_size, s.rng, s.noise)
        return _last_loss(self.model.fit(pairs, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False))


class _DomainAdversarial(_Method):
    """``anchored``'s simulated classes, plus a gradient-reversed classifier of the two domains (DANN)."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        self.anchor = _anchor_pool(s.vols, s.card, s.structures, s.seed)
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
        batches = _domain_batches(self.anchor, s.vols, s.batch_size, s.rng)
        fitted = self.model.fit(
            batches, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False, callbacks=[self.reversal]
        )
        return _last_loss(fitted)


class _MatchedSimulation(_Method):
    """``like``: a fresh cosine head trained on sub-tomograms simulated around the picks' acquisition."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        structures = s.structures or list(LIKE_STRUCTURES)
        self.simulated = _matched_simulation(s.vols, s.card, structures, s.batch_size, s.steps, s.seed)
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
        pairs = _with_user_batches(self.simulated, s.vols, s.rng)
        return _last_loss(self.model.fit(pairs, steps_per_epoch=s.steps, epochs=1, verbose=0, shuffle=False))


class _InfoMax(_Method):
    """The model's own class head kept; its predictions on the picks made confident and diverse (SHOT)."""

    def __init__(self, s: _Setup, report: AdaptReport) -> None:
        super().__init__(s, report)
        for layer in s.classifier.layers:
            layer.trainable = layer.trainable and layer.name != OUTPUT_LAYER
        self.model = keras.Model(model_input(s.classifier), class_output(s.classifier))  # without a binding output
        self.model.compile(s.adam(), InfoMaxLoss(), jit_compile=False)
        self.n_out = int(self.model.output.shape[-1])

    def fit_round(self, r, bank, labels):
        s = self.s
        return _train_round(self.model, s.vols, np.zeros(len(s.vols), int), self.n_out, s.steps, s.batch_size, s.rng)


_METHOD_OF = {
    "pseudolabel": _PseudoLabels,
    "infomax": _InfoMax,
    "like": _MatchedSimulation,
    "coral": _Coral,
    "neighbours": _Neighbours,
    "anchored": _Anchored,
    "dann": _DomainAdversarial,
}


def _check_settings(
    method: str,
    n_picks: int,
    rounds: int,
    steps: int,
    batch_size: int,
    neighbours: int,
    noise: float,
    dispersion: float,
    anchor_weight: float,
    one_way_weight: float,
    augmentation: str,
    k: int | None,
) -> None:
    """One clear error for a setting outside its range, before any embedding."""
    if n_picks < 20:
        raise InputError(f"{n_picks} sub-tomograms: adaptation needs at least 20")
    if rounds < 1 or steps < 1 or batch_size < 1:
        raise InputError(f"rounds = {rounds}, steps = {steps}, batch_size = {batch_size}: each must be at least 1")
    if not 0.0 <= noise <= 4.0:
        raise InputError(f"noise = {noise}: must be between 0 and 4 (a fraction of each pick's spread)")
    if not 0.0 <= dispersion <= 10.0:
        raise InputError(f"dispersion = {dispersion}: must be between 0 and 10")
    if not 0.0 <= anchor_weight <= 100.0:
        raise InputError(f"anchor_weight = {anchor_weight}: must be between 0 and 100")
    if not 0.0 < one_way_weight <= 1.0:
        raise InputError(f"one_way_weight = {one_way_weight}: must be above 0 and at most 1")
    if method in ("neighbours", "anchored") and not 1 <= neighbours < n_picks:
        raise InputError(f"neighbours = {neighbours}: must be at least 1 and below the {n_picks} picks")
    if k is not None and not 2 <= k < n_picks:
        raise InputError(f"k = {k}: must be at least 2 and below the {n_picks} picks")
    require_augmentation(augmentation)


def _record_settings(report: AdaptReport, s: _Setup, method: str, steps: int, freeze_convs: int) -> None:
    """The settings that shaped the method, in the report (0 / defaults where a method does not use one)."""
    report.steps, report.batch_size = int(steps), int(s.batch_size)
    if method in ("neighbours", "anchored"):
        report.neighbours = int(s.neighbours)
        report.noise = float(s.noise)
        report.one_way_weight = float(s.one_way_weight)
        report.dispersion = float(s.dispersion)
    if method == "neighbours":
        report.augmentation = s.augmentation  # ``anchored`` augments as training does, whatever this says
    if method == "anchored":
        report.anchor_weight = float(s.anchor_weight)
    if method == "dann":
        report.domain_weight = DOMAIN_WEIGHT
    report.freeze_convs = int(freeze_convs)


@dataclass
class _Best:
    """The round the guard keeps so far (the input's weights and scores before any round)."""

    score: float
    weights: list
    stability: float
    overlap: float = 1.0


def _run_rounds(
    trainer: _Method,
    s: _Setup,
    report: AdaptReport,
    before: np.ndarray,
    labels: np.ndarray,
    ks: range,
    spread: float,
    best: _Best,
    guard: bool,
    tta: bool,
    on_round: Callable[[int, np.ndarray], None] | None,
) -> _Best:
    """Train round after round; each is scored (silhouette, stability, neighbourhoods kept) and recorded, a
    collapsed one ends the adaptation; returns the guard's pick: the best silhouette among the rounds whose
    stability holds (a round with a higher silhouette but a broken partition does not hide an earlier round that
    passes both; docs/adaptation.md)."""
    bank = before  # the features the neighbours are found in, renewed each round
    for r in range(s.rounds):
        loss = trainer.fit_round(r, bank, labels)
        feats = features_of(s.network, s.vols, tta=tta)
        if on_round is not None:
            on_round(r + 1, feats)
        score, new_labels = label_free_score(feats, s.k, s.seed)
        why = collapsed(feats, new_labels, spread)
        report.rounds.append(
            {
                "round": r + 1,
                "loss": round(loss, 4),
                "silhouette": round(score, 4),
                "silhouette_over_k": round(silhouette_over_k(feats, ks, s.seed), 4),
                "neighbourhood_kept": round(neighbourhood_overlap(before, feats, s.neighbours), 4),
                "stop": why,
            }
        )
        logger.info(f"  round {r + 1}: loss {loss:.3f}, silhouette {score:.3f}" + (f", stopped: {why}" if why else ""))
        if why:
            break
        round_stability = stability(feats, s.k, s.seed)
        report.rounds[-1]["stability"] = round(round_stability, 4)
        holds = round_stability >= report.stability_before - STABILITY_TOLERANCE
        if score > best.score and (holds or not guard):
            best = _Best(score, [w.copy() for w in s.network.get_weights()], round_stability)
            best.overlap = report.rounds[-1]["neighbourhood_kept"]
        labels = new_labels
        bank = feats
    return best


@numeric_threads_on_free_cores()  # the guard's k-means and spectra on the idle cores only: see threads.py
def adapt(
    model_path: str | Path,
    subtomograms: np.ndarray,
    out: str | Path,
    method: str = "neighbours",
    rounds: int = 3,
    steps: int = 100,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    k: int | None = None,
    seed: int = 0,
    source: str = "",
    overwrite: bool = False,
    structures: list[str] | None = None,
    guard: bool = True,
    precision: str = "auto",
    on_round: Callable[[int, np.ndarray], None] | None = None,
    tta: bool = True,
    neighbours: int | None = None,
    noise: float = 0.0,
    one_way_weight: float = 1.0,
    dispersion: float = DISPERSION,
    anchor_weight: float = ANCHOR_WEIGHT,
    freeze_convs: int = 0,
    augmentation: str = "flip",
) -> AdaptReport:
    """Adapt the model at ``model_path`` to ``subtomograms`` (N, B, B, B) at its box and voxel size; write the
    adapted model (or, when the label-free score does not improve, the input model unchanged) to ``out``.

    ``guard=False`` (for benchmarks: what the guard refused) writes the best round by silhouette whatever the
    scores say; the report's ``guard_passed`` still says whether the guard would have kept it. ``precision``
    'bfloat16' trains and embeds in bf16 arithmetic (float32 weights; 'auto', the default: bf16 where the CPU
    has it, as ``embed``); the written model is float32 either way. ``on_round(r, features)`` sees each
    round's unit features (benchmarks score them against labels). ``tta``: every feature adapt computes (the
    neighbours, the label-free scores, ``on_round``'s) is the mean over the four wedge-symmetric views, as
    ``embed --tta`` computes them (the default: +0.066 mean best V on four held-out microscopes against +0.047
    without, docs/adaptation.md); the card records it and ``Embedder`` follows the card. ``neighbours``: how
    many nearest neighbours each pick is pulled towards (method ``neighbours``; AaD's K; None: ``NEIGHBOURS``, or
    one fewer than the picks when they are fewer). ``noise`` (method ``neighbours``): each training copy of a pick
    gets another pick's phase-randomised noise at up to this fraction of its spread (``with_own_spectrum_noise``),
    so a noisier copy is pulled to the same neighbours as the clean pick; 0 adds none. ``one_way_weight`` (method
    ``neighbours``): the weight of a neighbour that does not count the pick among its own nearest, against 1 for a
    mutual one (``neighbour_targets``). ``dispersion``: the weight of the push away from the batch's other picks
    (``NeighbourAttractionLoss``; AaD's lambda). ``anchor_weight`` (method ``anchored``): the weight of CosFace on
    the simulated sub-tomograms of the model's own classes against 1 for the neighbours' pull; ``structures``
    names them (default: the model's classes made by code, ``anchor_structures``). ``freeze_convs``: the encoder's
    first N of 8 convolutions are not trained (``train --freeze-convs``: fewer weights to move on a few hundred
    picks, and a cheaper step). ``augmentation`` (method ``neighbours``): the training copies' ``augmented``
    ('flip', the training augmentation; 'views', any of the four wedge-symmetric views)."""
    if method not in METHODS:
        raise InputError(f"unknown adaptation method {method!r}; choose from {', '.join(METHODS)}")
    t0 = time.time()
    precision = training_precision(precision)
    classifier, card = load_model(model_path)
    if precision == "bfloat16":
        classifier = with_dtype_policy(classifier, "mixed_bfloat16")
    box = int(card["box_size"])
    vols = np.asarray(subtomograms, np.float32)
    if vols.ndim != 4 or vols.shape[1:] != (box, box, box):
        raise InputError(f"sub-tomograms have shape {vols.shape}; the model expects (N, {box}, {box}, {box})")
    neighbours = min(NEIGHBOURS, len(vols) - 1) if neighbours is None else neighbours
    _check_settings(
        method,
        len(vols),
        rounds,
        steps,
        batch_size,
        neighbours,
        noise,
        dispersion,
        anchor_weight,
        one_way_weight,
        augmentation,
        k,
    )
    if method in ("anchored", "dann") and not structures:
        structures = anchor_structures(card["classes"])  # refused before any embedding when the model has none
    vols = normalise(vols)
    rng = np.random.default_rng(seed)
    network = embedding_model(classifier)
    for layer in leading_convolutions(network, freeze_convs):
        layer.trainable = False
    per_view = [unit_embeddings(network, view) for view in wedge_symmetric_views(vols)]
    four_views = mean_of_views(per_view)
    before = four_views if tta else per_view[0]
    # how far the input's own neighbourhoods move between one view and four: what a change the features should
    # ignore does to them, the reference the adapted model's ``neighbourhood_kept`` is read against
    between_views = neighbourhood_overlap(four_views, per_view[0], neighbours)
    ks = range(2, min(16, len(vols) // 5))
    if k is None:
        per_k, _ = sweep_k(before, ks, seed=seed)
        k = select_k(per_k)
    score_before, labels = label_free_score(before, k, seed)
    spread = float(before.std(axis=0).sum())
    logger.info(f"adapt ({method}): {len(vols)} picks, k = {k}, silhouette before {score_before:.3f}")
    report = AdaptReport(
        method, len(vols), int(k), score_before, score_before, "input", source=source, precision=precision, tta=tta
    )
    s = _Setup(
        classifier,
        network,
        card,
        vols,
        rng,
        int(k),
        rounds,
        steps,
        batch_size,
        learning_rate,
        seed,
        structures,
        neighbours,
        noise,
        one_way_weight,
        dispersion,
        anchor_weight,
        augmentation,
    )
    _record_settings(report, s, method, steps, freeze_convs)
    report.neighbourhood_between_views = round(between_views, 4)
    report.stability_before = report.stability_after = stability(before, k, seed)
    report.silhouette_over_k_before = round(silhouette_over_k(before, ks, seed), 4)
    input_weights = [w.copy() for w in network.get_weights()]
    start = _Best(score_before if guard else -np.inf, input_weights, report.stability_before)
    trainer = _METHOD_OF[method](s, report)
    best = _run_rounds(trainer, s, report, before, labels, ks, spread, start, guard, tta, on_round)
    if best.score == -np.inf:  # unguarded, and the first round already collapsed: nothing to write but the input
        best = _Best(score_before, input_weights, report.stability_before)
    network.set_weights(best.weights)
    report.score_after = best.score
    if best.weights is not input_weights:
        report.stability_after = best.stability  # of the same features: the kept round's own
    improved = best.score > score_before and report.stability_after >= report.stability_before - STABILITY_TOLERANCE
    report.guard_passed = bool(improved)
    report.kept = "adapted" if improved or (not guard and best.weights is not input_weights) else "input"
    report.neighbourhood_kept = best.overlap if report.kept == "adapted" else 1.0
    report.seconds = round(time.time() - t0, 1)
    _warn_if_laid_out_anew(report, between_views, neighbours)
    if report.kept == "input":
        logger.warning(
            f"adapt: silhouette {score_before:.3f} -> {best.score:.3f}, stability {report.stability_before:.3f} -> "
            f"{report.stability_after:.3f}: not better on both; the input model is kept"
        )
        classifier, card = load_model(model_path)
    _write_adapted(classifier, card, report, model_path, out, overwrite)
    return report


def _warn_if_laid_out_anew(report: AdaptReport, between_views: float, neighbours: int) -> None:
    if report.neighbourhood_kept < NEIGHBOURHOOD_WARNING * between_views:
        logger.warning(
            f"adapt: the adapted features keep {report.neighbourhood_kept:.0%} of the input model's "
            f"{neighbours} nearest neighbours of each pick, against {between_views:.0%} between one view of the "
            "picks and four: the picks were laid out anew, which the silhouette and the stability cannot check "
            "(on a design set infomax did this while its V-measure fell 0.11); compare the clusters' averages "
            "with the input model's before using it"
        )


def _write_adapted(classifier: keras.Model, card: dict, report: AdaptReport, model_path, out, overwrite: bool) -> None:
    """The model (float32, every layer trainable) with the report in its card."""
    card = {
        **card,
        "adaptation": {
            **asdict(report),
            "input_model": str(model_path),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    for layer in classifier.layers:
        layer.trainable = True
    # rebuilt, not cloned: infomax compiled the classifier itself, and a clone would carry Adam's state
    save_model(with_dtype_policy(classifier, "float32"), out, card, overwrite=overwrite)


def _aligned_model(network: keras.Model, head: keras.layers.Layer, box: int) -> keras.Model:
    """(simulated batch, user batch) -> class cosines of the simulated batch, with the CORAL loss between the
    two batches' embeddings (one network, shared weights)."""
    sim_in = keras.Input((box, box, box, 1), name="simulated")
    user_in = keras.Input((box, box, box, 1), name="user")
    aligned = CoralAlignment(name="coral")(network(sim_in), network(user_in))
    return keras.Model([sim_in, user_in], head(aligned))


@dataclass
class AnchorPool:
    """Simulated sub-tomograms (N, B, B, B) with their rows of the model's own class output (one-hot)."""

    volumes: np.ndarray
    targets: np.ndarray
    estimate: dict


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


def _domain_batches(anchor: AnchorPool, volumes: np.ndarray, batch: int, rng: np.random.Generator):
    """Augmented (simulated half batch, user batch) with (their class rows, domain 0, domain 1)."""
    half = max(1, batch // 2)
    while True:
        idx = rng.integers(len(anchor.volumes), size=half)
        picks = rng.integers(len(volumes), size=batch)
        yield (
            (augment(anchor.volumes[idx], rng)[..., None], augment(volumes[picks], rng)[..., None]),
            (anchor.targets[idx], np.zeros((half, 1), np.float32), np.ones((batch, 1), np.float32)),
        )


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


def _anchor_pool(vols: np.ndarray, card: dict, structures: list[str] | None, seed: int) -> AnchorPool:
    """``ANCHOR_POOL`` sub-tomograms of the model's own classes, simulated around the picks' acquisition; the
    labels are the model's own output rows (by class name), so its class directions are the targets."""
    classes = {str(name): int(index) for index, name in card["classes"].items()}
    specs = structures or anchor_structures(card["classes"])
    source = _matched_simulation(vols, card, specs, 16, ANCHOR_POOL // 16, seed)
    missing = sorted(set(source.class_names.values()) - set(classes))
    if missing:
        raise InputError(f"method anchored: the model has no class {', '.join(missing[:5])} (from {specs})")
    index_of = np.array([classes[source.class_names[int(label)]] for label in source.labels])
    xs, ys = zip(*(source[i] for i in range(len(source))))
    rows = index_of[np.concatenate(ys).argmax(axis=1)]
    targets = np.eye(len(classes), dtype=np.float32)[rows]
    return AnchorPool(np.concatenate(xs)[..., 0].astype(np.float32), targets, source.estimate)


def _anchored_batches(anchor: AnchorPool, volumes: np.ndarray, targets: np.ndarray, batch: int, rng, noise: float):
    """Augmented (simulated half batch, user batch) with (their class rows, the picks' neighbour targets)."""
    picks = _batches(volumes, targets, batch, rng, noise)
    while True:
        idx = rng.integers(len(anchor.volumes), size=max(1, batch // 2))
        x_user, y_user = next(picks)
        yield (augment(anchor.volumes[idx], rng)[..., None], x_user), (anchor.targets[idx], y_user)


def _with_user_batches(simulated, volumes: np.ndarray, rng: np.random.Generator):
    """The simulated batches, each paired with an augmented batch of the user's picks of the same size."""
    for i in range(len(simulated)):
        x, y = simulated[i]
        idx = rng.integers(len(volumes), size=len(x))
        yield (x, augment(volumes[idx], rng)[..., None]), y


def _matched_simulation(vols: np.ndarray, card: dict, structures: list[str], batch: int, steps: int, seed: int):
    """Class-balanced simulated batches at the model's box and voxel size, the acquisition matched to ``vols``."""
    from .simulate.config import SimConfig
    from .simulate.keras_source import SimulatedBatches
    from .simulate.like import config_like, estimate_acquisition
    from .simulate.structures import load_structures

    estimate = estimate_acquisition(vols, seed=seed)
    logger.info(f"adapt (like): estimated {estimate.to_dict()}")
    base = SimConfig(box_size=int(card["box_size"]), voxel_size=float(card["voxel_size"]))
    config = config_like(estimate, base)
    source = SimulatedBatches(
        load_structures(structures, config.voxel_size), config, batch, steps, seed=seed, specs=structures
    )
    source.estimate = estimate.to_dict()
    return source
