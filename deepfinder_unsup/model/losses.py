"""Classification losses for f_theta, written with Keras ops only (they run on any Keras backend).

- ``ce``: the paper's softmax cross-entropy on the class probabilities.
- ``cosface`` / ``arcface``: normalised softmax with an additive margin on the L2-normalised 32-D embedding
  (Wang et al. 2018, Deng et al. 2019). The model's output is the cosine between the embedding and each class
  direction; the loss subtracts a margin from the true class (``cos - m``, or ``cos(theta + m)``) and scales
  by ``s`` before the softmax. This shapes the embedding for clustering by angle, and its cost does not grow
  with the number of classes beyond one dot product each.
"""

from __future__ import annotations

import keras
from keras import ops

LOSSES = ("ce", "cosface", "arcface")


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class MarginSoftmaxLoss(keras.losses.Loss):
    """Cross-entropy of ``s * (cos - margin on the true class)``; ``y_pred`` holds cosines in [-1, 1]."""

    def __init__(
        self, kind: str = "cosface", scale: float = 24.0, margin: float = 0.15, name: str = "margin_softmax", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if kind not in ("cosface", "arcface"):
            raise ValueError(f"margin loss kind must be 'cosface' or 'arcface', got {kind!r}")
        self.kind, self.scale, self.margin = kind, float(scale), float(margin)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        cos = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-6, 1.0 - 1e-6)
        if self.kind == "cosface":
            target = cos - self.margin
        else:
            theta = ops.arccos(cos)
            target = ops.where(theta + self.margin < 3.14159265, ops.cos(theta + self.margin), cos - self.margin)
        logits = self.scale * (y_true * target + (1.0 - y_true) * cos)
        return keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "scale": self.scale, "margin": self.margin}


def make_loss(name: str, scale: float = 24.0, margin: float = 0.15):
    """The loss object for ``name`` (one of ``LOSSES``)."""
    if name == "ce":
        return keras.losses.CategoricalCrossentropy()
    if name in ("cosface", "arcface"):
        return MarginSoftmaxLoss(name, scale, margin)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
