"""DeepFinder's network in Keras 3 and a loader for DeepFinder weight files of every generation.

Architecture (cryoet-deepfinder ``my_model``): Conv3D 3x3x3 'same' ReLU 32, 32, MaxPool 2, 48, 48, MaxPool 2,
64, 64, 64, 64 (the encoder: output (dim/4)^3 x 64), then the decoder (UpSampling, 2x2x2 convs, skip
concatenations, 1x1x1 softmax). DeepFinder names no layer and loads by layer order; so does this loader.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers

from ..io.files import InputError, require_file

ENCODER_FILTERS = (32, 32, 48, 48, 64, 64, 64, 64)
_POOL_AFTER = (1, 3)  # max-pool after the 2nd and 4th convolutions (0-based indices)


def encoder_kernel_shapes() -> list[tuple[int, ...]]:
    """Kernel shapes of the 8 encoder convolutions, in order."""
    shapes: list[tuple[int, ...]] = []
    c_in = 1
    for f in ENCODER_FILTERS:
        shapes.append((3, 3, 3, c_in, f))
        c_in = f
    return shapes


def encoder_stack(prefix: str = "encoder") -> list:
    """DeepFinder's encoder as layer objects (8 convolutions, a max pooling after the 2nd and 4th), not yet applied:
    applying the same list to two tensors shares the weights between them."""
    stack: list = []
    for i, f in enumerate(ENCODER_FILTERS):
        stack.append(layers.Conv3D(f, 3, padding="same", activation="relu", name=f"{prefix}_conv{i + 1}"))
        if i in _POOL_AFTER:
            stack.append(layers.MaxPooling3D(2, name=f"{prefix}_pool{_POOL_AFTER.index(i) + 1}"))
    return stack


def encoder_layers(x, prefix: str = "encoder", stack: list | None = None):
    """Apply DeepFinder's encoder (``stack``, or a new one) to tensor ``x``; returns (output, [high, mid] skip
    tensors)."""
    skips = []
    for layer in stack if stack is not None else encoder_stack(prefix):
        if isinstance(layer, layers.MaxPooling3D):
            skips.append(x)
        x = layer(x)
    return x, skips


def build_encoder(box_size: int = 40) -> keras.Model:
    """DeepFinder's encoder alone: (B, B, B, 1) -> (B/4, B/4, B/4, 64). ``box_size`` must be a multiple of 4."""
    if box_size % 4:
        raise ValueError(f"box size must be a multiple of 4 (two 2x poolings), got {box_size}")
    inp = keras.Input((box_size, box_size, box_size, 1), name="subtomogram")
    out, _ = encoder_layers(inp)
    return keras.Model(inp, out, name="deepfinder_encoder")


def build_deepfinder(box_size: int = 40, n_classes: int = 13) -> keras.Model:
    """DeepFinder's full segmentation network (encoder + decoder + voxel-wise softmax)."""
    inp = keras.Input((box_size, box_size, box_size, 1), name="subtomogram")
    x, (high, mid) = encoder_layers(inp)
    x = layers.UpSampling3D(2, name="decoder_up1")(x)
    x = layers.Conv3D(64, 2, padding="same", activation="relu", name="decoder_conv9")(x)
    x = layers.Concatenate(name="decoder_concat1")([x, mid])
    x = layers.Conv3D(48, 3, padding="same", activation="relu", name="decoder_conv10")(x)
    x = layers.Conv3D(48, 3, padding="same", activation="relu", name="decoder_conv11")(x)
    x = layers.UpSampling3D(2, name="decoder_up2")(x)
    x = layers.Conv3D(48, 2, padding="same", activation="relu", name="decoder_conv12")(x)
    x = layers.Concatenate(name="decoder_concat2")([x, high])
    x = layers.Conv3D(32, 3, padding="same", activation="relu", name="decoder_conv13")(x)
    x = layers.Conv3D(32, 3, padding="same", activation="relu", name="decoder_conv14")(x)
    out = layers.Conv3D(n_classes, 1, padding="same", activation="softmax", name="decoder_conv15")(x)
    return keras.Model(inp, out, name="deepfinder")


def _natural_key(name: str):
    """Sort 'conv3d' < 'conv3d_2' < 'conv3d_10' (Keras' unnamed-layer counters)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _decode(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _conv_pairs_legacy(group: h5py.Group) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) pairs of an h5 weights group with ``layer_names`` (Keras 2.x / tf.keras 2.x)."""
    pairs = []
    for lname in _decode(group.attrs["layer_names"]):
        lg = group[lname]
        wnames = _decode(lg.attrs.get("weight_names", []))
        arrays = [np.asarray(lg[w]) for w in wnames]
        kernels = [a for a in arrays if a.ndim == 5]
        biases = [a for a in arrays if a.ndim == 1]
        if kernels:
            pairs.append((kernels[0], biases[0] if biases else np.zeros(kernels[0].shape[-1], np.float32)))
    return pairs


def _conv_pairs_keras3(group: h5py.Group) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) pairs of a Keras 3 ``.weights.h5`` (``layers/<name>/vars/0, 1``), in natural order."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.endswith("vars") and "0" in obj:
            kernel = np.asarray(obj["0"])
            if kernel.ndim == 5:
                bias = np.asarray(obj["1"]) if "1" in obj else np.zeros(kernel.shape[-1], np.float32)
                found.append((name, kernel, bias))

    group.visititems(visit)
    found.sort(key=lambda t: _natural_key(t[0]))
    return [(k, b) for _, k, b in found]


def read_deepfinder_convolutions(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """All 3-D convolution (kernel, bias) pairs of a DeepFinder weight file, in network order.

    Reads, with h5py and never by layer name: full-model HDF5 of standalone Keras 2.1 (``model_weights/``),
    weights-only HDF5 of tf.keras 2.x (root ``layer_names``), and Keras 3 ``.weights.h5``.
    """
    path = require_file(path, "weight file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 weight file ({exc})") from None
    with h5:
        if "model_weights" in h5 and "layer_names" in h5["model_weights"].attrs:
            pairs = _conv_pairs_legacy(h5["model_weights"])
        elif "layer_names" in h5.attrs:
            pairs = _conv_pairs_legacy(h5)
        elif "layers" in h5 or "_layer_checkpoint_dependencies" in h5:
            pairs = _conv_pairs_keras3(h5)
        else:
            raise InputError(f"{path}: not a Keras weight file (no model_weights/, layer_names or layers/)")
    if not pairs:
        raise InputError(f"{path}: holds no 3-D convolution weights: not a DeepFinder network")
    return pairs


def _conv_layers(model: keras.Model) -> list[layers.Conv3D]:
    out = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv3D):
            out.append(layer)
        elif isinstance(layer, keras.Model):
            out.extend(_conv_layers(layer))
    return out


def load_deepfinder_weights(model: keras.Model, path: str | os.PathLike, encoder_only: bool | None = None) -> int:
    """Load DeepFinder weights into ``model`` by convolution order and shape; returns the layers loaded.

    ``model`` may be the encoder, any model built on :func:`encoder_layers` (its encoder convolutions come
    first), or the full :func:`build_deepfinder` network (then the decoder is loaded too, unless
    ``encoder_only``). Every shape is checked before anything is assigned: a file that is not a DeepFinder
    network, or whose shapes differ, raises InputError and leaves the model untouched.
    """
    path = Path(path)
    pairs = read_deepfinder_convolutions(path)
    targets = [l for l in _conv_layers(model) if l.name.startswith(("encoder_conv", "decoder_conv"))]
    if encoder_only or encoder_only is None and len(targets) != len(pairs):
        targets = [l for l in targets if l.name.startswith("encoder_conv")]
    expected = encoder_kernel_shapes()
    got = [tuple(k.shape) for k, _ in pairs[: len(expected)]]
    if got != expected:
        raise InputError(
            f"{path}: not a DeepFinder encoder: its first convolution kernels have shapes {got}, expected {expected}"
        )
    if len(targets) < len(expected):
        raise ValueError(
            f"the model has {len(targets)} encoder convolutions named 'encoder_conv*', DeepFinder's "
            f"encoder has {len(expected)}: build it with build_encoder / encoder_layers"
        )
    if len(pairs) < len(targets):
        raise InputError(f"{path}: holds {len(pairs)} convolutions, the model needs {len(targets)}")
    for layer, (kernel, _bias) in zip(targets, pairs):
        want = tuple(layer.kernel.shape)
        if tuple(kernel.shape) != want:
            raise InputError(
                f"{path}: kernel for layer {layer.name} has shape {tuple(kernel.shape)}, "
                f"the model's is {want} (different number of classes?)"
            )
    for layer, (kernel, bias) in zip(targets, pairs):
        layer.set_weights([kernel, bias])
    return len(targets)
