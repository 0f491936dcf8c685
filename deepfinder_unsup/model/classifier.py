"""f_theta: DeepFinder's encoder + fully connected head; a 32-D embedding layer before the class softmax.

Two head designs (compared in docs/model_card.md):
- ``flatten``: MaxPool 2 -> Flatten (5^3 x 64 at 40^3) -> Dense 128 ReLU -> Dropout -> Dense 32 (embedding)
- ``gap``: GlobalAveragePooling -> LayerNorm -> Dense 128 ReLU -> Dropout -> Dense 32 (embedding)
The embedding layer is linear; the pruned network (:func:`embedding_model`) stops there.
"""
from __future__ import annotations

import keras
from keras import layers

from .deepfinder import encoder_layers

EMBEDDING_LAYER = "embedding"
OUTPUT_LAYER = "class_output"
HEADS = ("flatten", "gap")


def build_classifier(n_classes: int, box_size: int = 40, head: str = "flatten", embedding_dim: int = 32,
                     hidden: int = 128, dropout: float = 0.3) -> keras.Model:
    """Encoder + head + softmax over ``n_classes``; layer ``embedding`` is the feature vector."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    if box_size % 4:
        raise ValueError(f"box size must be a multiple of 4, got {box_size}")
    inp = keras.Input((box_size, box_size, box_size, 1), name="subtomogram")
    x, _ = encoder_layers(inp)
    if head == "flatten":
        x = layers.MaxPooling3D(2, name="head_pool")(x)
        x = layers.Flatten(name="head_flatten")(x)
    else:
        x = layers.GlobalAveragePooling3D(name="head_gap")(x)
        x = layers.LayerNormalization(name="head_norm")(x)  # pooled ReLU features are tiny (~0.05)
    x = layers.Dense(hidden, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    emb = layers.Dense(embedding_dim, name=EMBEDDING_LAYER)(x)
    out = layers.Dense(n_classes, activation="softmax", name=OUTPUT_LAYER)(emb)
    return keras.Model(inp, out, name=f"f_theta_{head}")


def embedding_model(classifier: keras.Model) -> keras.Model:
    """The classifier with its output layer pruned: sub-tomogram -> embedding (R^32)."""
    return keras.Model(classifier.inputs, classifier.get_layer(EMBEDDING_LAYER).output, name="f_theta_embedding")
