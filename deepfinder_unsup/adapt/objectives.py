"""What the adaptation methods optimise beyond CosFace: their losses and the layers that add a loss or reverse a
gradient (SHOT's information maximisation, AaD's attraction and dispersion, Deep CORAL, DANN's domain classifier)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

DISPERSION = 1.0  # ``neighbours``: weight of the push away from the batch's other picks (AaD's lambda)
CORAL_WEIGHT = 10.0  # alignment loss weight: ~3 at the start on the strong-CTF domain, as CosFace's own


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
