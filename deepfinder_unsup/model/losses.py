"""Classification losses for f_theta, written with Keras ops only (they run on any Keras backend).

- ``ce``: the paper's softmax cross-entropy on the class probabilities.
- ``cosface`` / ``arcface``: normalised softmax with an additive margin on the L2-normalised 32-D embedding
  (Wang et al. 2018, Deng et al. 2019). The model's output is the cosine between the embedding and each class
  direction; the loss subtracts a margin from the true class (``cos - m``, or ``cos(theta + m)``) and scales
  by ``s`` before the softmax. This shapes the embedding for clustering by angle, and its cost does not grow
  with the number of classes beyond one dot product each.

Any of them takes a focal factor (``focal_gamma`` > 0, Lin et al. 2017): each sample's cross-entropy times
``(1 - p_true) ** gamma``, so the classes and sub-tomograms the network already gets right pull less and those it
does not fit (small structures among large ones) pull more. 0, the default, is the plain loss.
"""

from __future__ import annotations

import keras
from keras import ops

LOSSES = ("ce", "cosface", "arcface")


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class MarginSoftmaxLoss(keras.losses.Loss):
    """Cross-entropy of ``s * (cos - margin on the true class)``; ``y_pred`` holds cosines in [-1, 1]."""

    def __init__(
        self,
        kind: str = "cosface",
        scale: float = 24.0,
        margin: float = 0.15,
        focal_gamma: float = 0.0,
        name: str = "margin_softmax",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if kind not in ("cosface", "arcface"):
            raise ValueError(f"margin loss kind must be 'cosface' or 'arcface', got {kind!r}")
        self.kind, self.scale, self.margin = kind, float(scale), float(margin)
        self.focal_gamma = _checked_gamma(focal_gamma)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        cos = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-6, 1.0 - 1e-6)
        if self.kind == "cosface":
            target = cos - self.margin
        else:
            theta = ops.arccos(cos)
            target = ops.where(theta + self.margin < 3.14159265, ops.cos(theta + self.margin), cos - self.margin)
        logits = self.scale * (y_true * target + (1.0 - y_true) * cos)
        cross_entropy = keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        return focal_modulated(cross_entropy, self.focal_gamma)

    def get_config(self):
        config = {"kind": self.kind, "scale": self.scale, "margin": self.margin, "focal_gamma": self.focal_gamma}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class FocalCrossEntropy(keras.losses.Loss):
    """The paper's cross-entropy on class probabilities, times ``(1 - p_true) ** focal_gamma``."""

    def __init__(self, focal_gamma: float = 2.0, name: str = "focal_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.focal_gamma = _checked_gamma(focal_gamma)

    def call(self, y_true, y_pred):
        cross_entropy = keras.losses.categorical_crossentropy(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))
        return focal_modulated(cross_entropy, self.focal_gamma)

    def get_config(self):
        return {**super().get_config(), "focal_gamma": self.focal_gamma}


def focal_modulated(cross_entropy, gamma: float):
    """``(1 - p_true) ** gamma * CE`` per sample, with p_true = exp(-CE) (one-hot targets); ``gamma`` 0: CE."""
    if gamma == 0:
        return cross_entropy
    p_true = ops.exp(-cross_entropy)
    return ops.power(ops.maximum(1.0 - p_true, 1e-12), gamma) * cross_entropy


def _checked_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0 <= gamma < float("inf"):
        raise ValueError(f"the focal exponent must be 0 or more, got {gamma}")
    return gamma


def make_loss(name: str, scale: float = 24.0, margin: float = 0.15, focal_gamma: float = 0.0):
    """The loss object for ``name`` (one of ``LOSSES``), focal with ``focal_gamma`` > 0."""
    if name == "ce":
        return FocalCrossEntropy(focal_gamma) if focal_gamma else keras.losses.CategoricalCrossentropy()
    if name in ("cosface", "arcface"):
        return MarginSoftmaxLoss(name, scale, margin, focal_gamma)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
