"""f_theta: DeepFinder's encoder + fully connected head; a 32-D embedding layer before the class softmax.

Six head designs (compared in docs/model_card.md and docs/training_history.md, sessions 13, 43, 62 and 66):
- ``flatten``: MaxPool 2 -> Flatten (5^3 x 64 at 40^3) -> Dense 128 ReLU -> Dropout -> Dense 32 (embedding)
- ``gap``: GlobalAveragePooling -> LayerNorm -> Dense 128 ReLU -> Dropout -> Dense 32 (embedding)
- ``flatten_conv``: ``flatten`` plus capacity after DeepFinder's encoder: two 3^3 convolutions on the encoder's
  maps, global mean + max pooling, and a Dense 128 added to ``flatten``'s before its ReLU. That Dense starts at
  zero, so a ``flatten`` model copied into it (``train --init-model``) starts as the same function.
- ``flatten_conv_wide``: ``flatten_conv`` plus a wider, deeper branch on the encoder's maps (128 channels at 10^3,
  then two of 256 at 5^3 that see the whole box), pooled and added through another Dense that starts at zero: a
  ``flatten_conv`` model (the shipped ``general``) copied into it starts as the same function.
- ``flatten_conv_bilinear``: ``flatten_conv_wide`` plus a second-order branch: a 3^3 convolution on the encoder's
  maps, a 1^3 reduction to 32 channels and bilinear pooling (:class:`SecondOrderPooling`: which features occur
  together across the box, pose-free, where mean and max pooling keep only how much of each), through a Dense that
  starts at zero: the shipped ``general`` copied into it starts as the same function.
- ``flatten_conv_zoom``: ``flatten_conv_bilinear`` plus a zoom branch: the box's central half, upsampled 2x
  (:func:`zoomed_centre`), through the SAME encoder (shared weights), two 3^3 convolutions, mean + max pooling, x
  :data:`ZOOM_SCALE` and a Dense that starts at zero. A structure 7 voxels across is 2 voxels wide in the
  encoder's 10^3 maps; zoomed, 4: its shape survives the two poolings. Any ``flatten_conv*`` model copied into it
  starts as the same function.
The embedding layer is linear; the pruned network (:func:`embedding_model`) stops there. The output layer is
a softmax (``output="softmax"``, the paper's cross-entropy) or a :class:`CosineClassifier` (``"cosine"``: the
cosines that the margin losses of ``model.losses`` expect). With ``binding_states``, a second output
``binding_output`` (softmax over the scaled cosines to three directions: free / membrane surface / transmembrane)
asks for the binding context as one direction shared by every structure (what it did: docs/training_history.md,
"Session 5").
With ``view_weight``, a :class:`PairedViewConsistency` layer after the embedding asks, in training only, that a
particle and its wedge-symmetric view (the second half of each batch) get the same embedding direction: the
invariance ``embed --tta`` buys by averaging four views, learnt instead. With ``contrast_weight``, a
:class:`PairedContrast` layer asks instead that two independent sub-tomograms of the same structure (the two
halves of the batch: other pose, noise and microscope draw) be nearer each other than to every other sub-tomogram
in the batch: a supervised contrastive loss (NT-Xent, Khosla et al. 2020) that needs no class directions, so it
does not grow with the number of classes. With ``shape_descriptors`` n > 0, a last output ``shape_output``
regresses n rotation-invariant descriptors of the particle's structure (size, elongation, radial profile:
``simulate.descriptors``) linearly from the embedding's direction, in training only a target: what k-means on
L2-normalised features can use is the direction, so that is what must carry them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from ..io.files import InputError
from .deepfinder import encoder_layers, encoder_stack

EMBEDDING_LAYER = "embedding"
VIEW_LAYER = "view_consistency"
CONTRAST_LAYER = "pair_contrast"
OUTPUT_LAYER = "class_output"
BINDING_LAYER = "binding_output"
SHAPE_LAYER = "shape_output"
SHAPE_DIRECTION_LAYER = "shape_direction"
BINDING_STATES = ("free", "surface", "transmembrane")
BINDING_SCALE = 16.0  # cosine -> logit: a fresh binding output pulls on the embedding from the first step
HEADS = ("flatten", "gap", "flatten_conv", "flatten_conv_wide", "flatten_conv_bilinear", "flatten_conv_zoom")
BRANCH_CHANNELS = 64
WIDE_CHANNELS = (128, 256, 256)
BILINEAR_CHANNELS = (64, 32)  # the branch's 3^3 convolution, then the 1^3 reduction its Gram matrix is taken of
BILINEAR_SCALE = 10.0  # the pooled numbers' RMS: 10x the learning rate for the branch's Dense (SecondOrderPooling)
ZOOM_SCALE = 20.0  # the zoom branch's pooled maps (RMS 0.46 at the start) x 20: about the bilinear branch's 10
OUTPUTS = ("softmax", "cosine")


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class CosineClassifier(layers.Layer):
    """Cosine between the L2-normalised input and each of ``n_classes`` L2-normalised class directions."""

    def __init__(self, n_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.n_classes = int(n_classes)

    def build(self, input_shape):
        self.directions = self.add_weight(
            shape=(input_shape[-1], self.n_classes), initializer="glorot_normal", name="directions"
        )

    def call(self, x):
        x = ops.cast(x, "float32")
        w = ops.cast(self.directions, "float32")
        x = x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)
        w = w / ops.maximum(ops.norm(w, axis=0, keepdims=True), 1e-12)
        return ops.matmul(x, w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_classes,)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes}


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class PairedViewConsistency(layers.Layer):
    """Identity, except in training: adds ``weight`` x the mean of 1 - cos(e_i, e_(i+B/2)) over the first half
    of the batch (row i of the second half is a view of row i of the first). No weights; at inference, nothing."""

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, x, training=None):
        if training and self.weight > 0:
            self.add_loss(self.weight * paired_cosine_distance(x))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class PathDrop(layers.Layer):
    """Identity, except in training: each sample's whole input vector is zeroed with probability ``rate``, and
    kept unscaled otherwise (no 1 / (1 - rate) as in dropout, so what the next layer sees when the path is kept
    is what it sees at inference). No weights. On the ``flatten`` path of a ``flatten_conv*`` head
    (``train --flatten-drop``), the samples that lose it must be classified by the pose-free branches alone, so
    those branches take part (session 62 measured the wide branch at 0.1 % of the head's sum when nothing asks
    it to; docs/training_history.md, "Session 63"). Rate 1 removes the path: zero in training AND at inference, so
    the model is trained and used as the branches alone (its weights before the layer get no gradient)."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"path drop rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if self.rate == 1.0:
            return ops.zeros_like(x)
        if not training or self.rate == 0.0:
            return x
        keep = keras.random.uniform((ops.shape(x)[0], 1), seed=self.seed_generator) >= self.rate
        return x * ops.cast(keep, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class SecondOrderPooling(layers.Layer):
    """Bilinear pooling (Lin et al. 2015) of maps (b, z, y, x, c): the upper triangle of the channels' Gram matrix
    X^T X / n over the n positions, a signed square root and a root mean square of ``scale``: c (c + 1) / 2
    pose-free numbers that say which features occur together, for fine differences that global means and maxima
    average away. A fixed RMS, not unit length, and above 1 in the head (:data:`BILINEAR_SCALE`): Adam moves each
    weight by about the learning rate a step whatever its gradient's size, so inputs of RMS s make the Dense after
    it, starting at zero, learn s times as fast. Session 62 measured why that matters: the wide branch's pooled maps
    (RMS 0.03) left its Dense at an output RMS of 0.007 against the flatten path's 5.1 after sessions 43-61, and
    this branch at unit RMS reached 0.15 in two epochs at 5e-5 (docs/training_history.md, "Session 62"). Computed in
    float32 whatever the policy (a sum over 10^3 positions); the square root is offset by ``eps`` so that its
    gradient stays finite at zero."""

    def __init__(self, eps: float = 1e-4, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)
        self.scale = float(scale)

    def call(self, x):
        channels = x.shape[-1]
        flat = ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], -1, channels))
        gram = ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / ops.cast(ops.shape(flat)[1], "float32")
        rows, cols = np.triu_indices(channels)
        upper = ops.take(ops.reshape(gram, (-1, channels * channels)), rows * channels + cols, axis=1)
        root = ops.sign(upper) * (ops.sqrt(ops.abs(upper) + self.eps) - self.eps**0.5)
        return self.scale * root / ops.maximum(ops.sqrt(ops.mean(ops.square(root), axis=1, keepdims=True)), 1e-12)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (input_shape[0], channels * (channels + 1) // 2)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps, "scale": self.scale}


def paired_cosine_distance(x):
    """Mean of 1 - cos between row i and row i + B/2 (float32 whatever the policy)."""
    half = ops.shape(x)[0] // 2
    x = ops.cast(x, "float32")
    a = ops.normalize(x[:half], axis=-1)
    b = ops.normalize(x[half : 2 * half], axis=-1)
    return ops.mean(1.0 - ops.sum(a * b, axis=-1))


@keras.saving.register_keras_serializable(package="deepfinder_unsup")
class PairedContrast(layers.Layer):
    """Identity, except in training: adds ``weight`` x :func:`paired_contrastive_loss` of the batch (row i and
    row i + B/2 are two sub-tomograms of the same structure). At inference, nothing.

    With ``memory`` M > 0, a cross-batch memory (XBM, Wang et al. 2020): the embeddings of the last
    ``memory_rows`` rows of each batch's first half (the structures drawn once, ``train --fresh-structures``:
    never a class, never seen again) are kept, without gradient, in a first-in first-out queue of M rows, and
    every row of later batches must also find its partner against those, past the ``memory_delay`` steps within
    which a batch may be trained on again (``train --reuse``: the same structures in another view, not negatives).
    So each step sees thousands of negatives where a batch of 32 has 30. The queue is non-trainable state saved
    with the model (a resumed run continues it)."""

    def __init__(
        self,
        weight: float = 1.0,
        temperature: float = 0.1,
        memory: int = 0,
        memory_rows: int = 0,
        memory_delay: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weight, self.temperature = float(weight), float(temperature)
        self.memory, self.memory_rows, self.memory_delay = int(memory), int(memory_rows), int(memory_delay)
        if self.memory < 0 or self.memory_rows < 0 or self.memory_delay < 0:
            raise ValueError("memory, memory_rows and memory_delay must not be negative")
        if self.memory and not self.memory_rows:
            raise ValueError("a contrastive memory needs rows to remember (memory_rows > 0: the drawn-once pairs)")

    def build(self, input_shape):
        if self.memory:
            dim = int(input_shape[-1])
            # float32 state, never cast to a bf16 policy's compute type (step counts must stay exact)
            state = {"trainable": False, "autocast": False, "dtype": "float32"}
            self.queue = self.add_weight((self.memory, dim), initializer="zeros", name="queue", **state)
            # the step each row was written at; -1 = empty (never a negative)
            never = keras.initializers.Constant(-1.0)
            self.written = self.add_weight((self.memory,), initializer=never, name="written", **state)
            self.steps = self.add_weight((), initializer="zeros", name="steps", **state)

    def call(self, x, training=None):
        if training and self.weight > 0:
            if self.memory:
                negatives = self.memory_negatives()
                self.add_loss(self.weight * paired_contrastive_loss(x, self.temperature, negatives))
                self.remember(x)
            else:
                self.add_loss(self.weight * paired_contrastive_loss(x, self.temperature))
        return x

    def memory_negatives(self):
        """The queue's rows old enough to be other structures; the rest zeroed and marked by a -inf mask."""
        old_enough = ops.logical_and(self.written >= 0, self.steps - self.written > self.memory_delay)
        usable = ops.cast(old_enough, "float32")
        return self.queue * usable[:, None], (1.0 - usable) * -1e9

    def remember(self, x) -> None:
        """Push the batch's drawn-once rows (first half, last ``memory_rows``) onto the queue; drop the oldest."""
        half = ops.shape(x)[0] // 2
        rows = ops.normalize(ops.cast(ops.stop_gradient(x[half - self.memory_rows : half]), "float32"), axis=-1)
        n = self.memory_rows
        self.queue.assign(ops.concatenate([rows, self.queue[: self.memory - n]], axis=0))
        stamp = ops.full((n,), 1.0, "float32") * self.steps
        self.written.assign(ops.concatenate([stamp, self.written[: self.memory - n]], axis=0))
        self.steps.assign(self.steps + 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {**super().get_config(), "weight": self.weight, "temperature": self.temperature}
        if self.memory:
            config.update(memory=self.memory, memory_rows=self.memory_rows, memory_delay=self.memory_delay)
        return config


def paired_contrastive_loss(x, temperature: float = 0.1, negatives=None):
    """NT-Xent over the batch: for each row, the cross-entropy of finding its pair (i <-> i + B/2) among all
    other rows, by cosine / ``temperature``; the mean over rows (float32 whatever the policy).

    ``negatives``: (rows (M, d), additive logit mask (M,)): more candidates every row must tell its pair from
    (a cross-batch memory; masked rows take no part)."""
    n = ops.shape(x)[0]
    half = n // 2
    z = ops.normalize(ops.cast(x[: 2 * half], "float32"), axis=-1)
    logits = ops.matmul(z, ops.transpose(z)) / temperature - 1e9 * ops.eye(2 * half, dtype="float32")
    partner = ops.concatenate([ops.arange(half) + half, ops.arange(half)])
    target = ops.one_hot(partner, 2 * half, dtype="float32")
    if negatives is not None:
        rows, mask = negatives
        logits = ops.concatenate([logits, ops.matmul(z, ops.transpose(rows)) / temperature + mask[None, :]], axis=1)
        target = ops.concatenate([target, ops.zeros((2 * half, ops.shape(rows)[0]), "float32")], axis=1)
    return ops.mean(keras.losses.categorical_crossentropy(target, logits, from_logits=True))


def build_classifier(
    n_classes: int,
    box_size: int = 40,
    head: str = "flatten",
    embedding_dim: int = 32,
    hidden: int = 128,
    dropout: float = 0.3,
    output: str = "softmax",
    binding_states: bool = False,
    view_weight: float = 0.0,
    contrast_weight: float = 0.0,
    temperature: float = 0.1,
    contrast_memory: tuple[int, int, int] = (0, 0, 0),
    shape_descriptors: int = 0,
    flatten_drop: float = 0.0,
) -> keras.Model:
    """Encoder + head + output over ``n_classes``; layer ``embedding`` is the feature vector.

    With ``binding_states`` the model has two outputs: the classes, then :data:`BINDING_STATES`. With
    ``view_weight`` > 0, the paired-view loss (:class:`PairedViewConsistency`) acts on the embedding; with
    ``contrast_weight`` > 0, the paired contrastive loss (:class:`PairedContrast`), with ``contrast_memory`` (its
    memory, memory_rows, memory_delay) a cross-batch memory of drawn-once structures. With ``shape_descriptors`` n
    > 0, a last output of n shape descriptors (linear in the unit-length embedding). With ``flatten_drop`` > 0
    (``flatten_conv*`` heads only), :class:`PathDrop` on the flatten path: in training, that share of the samples
    is classified by the pose-free branches alone; at 1 the flatten path is removed, in training and at inference."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if flatten_drop and not head.startswith("flatten_conv"):
        raise ValueError(f"flatten_drop needs a head with pose-free branches (flatten_conv...), got {head!r}")
    if box_size % 4:
        raise ValueError(f"box size must be a multiple of 4, got {box_size}")
    inp = keras.Input((box_size, box_size, box_size, 1), name="subtomogram")
    encoder = encoder_stack()
    x, _ = encoder_layers(inp, stack=encoder)
    if head.startswith("flatten_conv"):
        zoom = encoder_layers(zoomed_centre(inp), stack=encoder)[0] if head == "flatten_conv_zoom" else None
        x = flatten_with_conv_branch(
            x,
            hidden,
            wide=head != "flatten_conv",
            bilinear=head in ("flatten_conv_bilinear", "flatten_conv_zoom"),
            flatten_drop=flatten_drop,
            zoom_maps=zoom,
        )
    elif head == "flatten":
        x = layers.MaxPooling3D(2, name="head_pool")(x)
        x = layers.Flatten(name="head_flatten")(x)
        x = layers.Dense(hidden, activation="relu", name="head_dense")(x)
    else:
        x = layers.GlobalAveragePooling3D(name="head_gap")(x)
        x = layers.LayerNormalization(name="head_norm")(x)  # pooled ReLU features are tiny (~0.05)
        x = layers.Dense(hidden, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    emb = layers.Dense(embedding_dim, name=EMBEDDING_LAYER)(x)
    if view_weight > 0:
        emb = PairedViewConsistency(view_weight, name=VIEW_LAYER)(emb)
    if contrast_weight > 0:
        emb = PairedContrast(contrast_weight, temperature, *contrast_memory, name=CONTRAST_LAYER)(emb)
    if output == "softmax":
        out = layers.Dense(n_classes, activation="softmax", name=OUTPUT_LAYER, dtype="float32")(emb)
    else:
        out = CosineClassifier(n_classes, name=OUTPUT_LAYER, dtype="float32")(emb)
    outputs = [out]
    if binding_states:
        cosines = CosineClassifier(len(BINDING_STATES), name="binding_directions", dtype="float32")(emb)
        scaled = layers.Rescaling(BINDING_SCALE, name="binding_scale", dtype="float32")(cosines)
        outputs.append(layers.Activation("softmax", name=BINDING_LAYER, dtype="float32")(scaled))
    if shape_descriptors > 0:
        direction = layers.UnitNormalization(name=SHAPE_DIRECTION_LAYER, dtype="float32")(emb)
        outputs.append(layers.Dense(shape_descriptors, name=SHAPE_LAYER, dtype="float32")(direction))
    return keras.Model(inp, outputs[0] if len(outputs) == 1 else outputs, name=f"f_theta_{head}")


def flatten_with_conv_branch(
    features,
    hidden: int = 128,
    wide: bool = False,
    bilinear: bool = False,
    flatten_drop: float = 0.0,
    zoom_maps=None,
):
    """``flatten``'s Dense (same layer names and shapes, so its weights copy) plus a convolutional branch on the
    encoder's maps whose Dense starts at zero: the sum is the ``flatten`` head's function until training moves
    the branch. The branch's global pooling sees the whole box at once, where ``flatten`` ties each weight to one
    position of the 5^3 grid. ``wide`` adds :func:`wide_branch`, ``bilinear`` :func:`bilinear_branch`, ``zoom_maps``
    (the encoder's maps of :func:`zoomed_centre`) :func:`zoom_branch`, each also through a Dense that starts at
    zero. ``flatten_drop`` > 0 puts :class:`PathDrop` on the flatten path's Dense output (training only); at 1 the
    path is removed and its Dense frozen (it gets no gradient, and Keras would warn of that in every run)."""
    flat = layers.MaxPooling3D(2, name="head_pool")(features)
    flat = layers.Flatten(name="head_flatten")(flat)
    flat = layers.Dense(hidden, name="head_dense", trainable=flatten_drop < 1)(flat)
    if flatten_drop > 0:
        flat = PathDrop(flatten_drop, name="head_flatten_drop")(flat)
    branch = layers.Conv3D(BRANCH_CHANNELS, 3, padding="same", activation="relu", name="head_conv1")(features)
    branch = layers.Conv3D(BRANCH_CHANNELS, 3, padding="same", activation="relu", name="head_conv2")(branch)
    branch = layers.Dense(hidden, kernel_initializer="zeros", name="head_branch_dense")(
        mean_and_max(branch, "head_branch")
    )
    terms = [flat, branch]
    if wide:
        terms.append(wide_branch(features, hidden))
    if bilinear:
        terms.append(bilinear_branch(features, hidden))
    if zoom_maps is not None:
        terms.append(zoom_branch(zoom_maps, hidden))
    summed = layers.Add(name="head_sum")(terms)
    return layers.Activation("relu", name="head_relu")(summed)


def wide_branch(features, hidden: int = 128):
    """Capacity after DeepFinder's encoder that its 1.8 M weights lack: a 3^3 convolution to 128 channels at the
    maps' 10^3, max pooling to 5^3, two 3^3 convolutions of 256 there (their field covers the whole box), mean +
    max pooling (512) and a Dense to ``hidden`` that starts at zero (2.9 M weights; 1.11 GFLOP, +17 % of
    ``flatten_conv``'s 6.58 per 40^3 box)."""
    first, second, third = WIDE_CHANNELS
    x = layers.Conv3D(first, 3, padding="same", activation="relu", name="head_wide_conv1")(features)
    x = layers.MaxPooling3D(2, padding="same", name="head_wide_downsample")(x)
    x = layers.Conv3D(second, 3, padding="same", activation="relu", name="head_wide_conv2")(x)
    x = layers.Conv3D(third, 3, padding="same", activation="relu", name="head_wide_conv3")(x)
    return layers.Dense(hidden, kernel_initializer="zeros", name="head_wide_dense")(mean_and_max(x, "head_wide"))


def bilinear_branch(features, hidden: int = 128):
    """A 3^3 convolution (64, ReLU) on the encoder's maps, a 1^3 reduction to 32 channels, :class:`SecondOrderPooling`
    (528 numbers) and a Dense to ``hidden`` that starts at zero (0.18 M weights; 0.23 GFLOP per 40^3 box, +3 % of
    ``flatten_conv_wide``'s 7.69)."""
    conv, reduced = BILINEAR_CHANNELS
    x = layers.Conv3D(conv, 3, padding="same", activation="relu", name="head_bilinear_conv")(features)
    x = layers.Conv3D(reduced, 1, name="head_bilinear_reduce")(x)
    x = SecondOrderPooling(scale=BILINEAR_SCALE, name="head_bilinear_pool", dtype="float32")(x)
    return layers.Dense(hidden, kernel_initializer="zeros", name="head_bilinear_dense")(x)


def zoomed_centre(subtomogram, factor: int = 2, prefix: str = "head_zoom"):
    """The box's central 1/``factor`` (20^3 of 40^3 at 2) at ``factor`` times the sampling, back to the full box
    size: cropped, upsampled by repetition and smoothed by a ``factor``^3 mean with stride 1 (linear interpolation;
    ``same`` padding averages only voxels inside). The output's voxel k is the input's voxel crop + (k - (factor -
    1) // 2) / factor (box/4 + k/2 at 2), clamped to the crop: the zoomed box sits a fraction of a voxel off the
    original's centre. ``prefix`` names the layers (a second scale in one model needs its own)."""
    crop = int(subtomogram.shape[1]) // 2 - int(subtomogram.shape[1]) // (2 * factor)
    x = layers.Cropping3D(crop, name=f"{prefix}_crop")(subtomogram)
    x = layers.UpSampling3D(factor, name=f"{prefix}_upsample")(x)
    return layers.AveragePooling3D(factor, strides=1, padding="same", name=f"{prefix}_smooth")(x)


def zoom_branch(zoom_maps, hidden: int = 128):
    """Two 3^3 convolutions (64, ReLU) on the encoder's maps of the zoomed centre, mean + max pooling, a fixed
    :data:`ZOOM_SCALE` and a Dense to ``hidden`` that starts at zero (0.24 M weights; with the shared encoder's
    second pass 14.49 GFLOP per 40^3 box, 1.83x ``flatten_conv_bilinear``'s 7.91: ``layer_flops`` in
    benchmarks/embed_speed.py). The scale, as the bilinear branch's: Adam moves each weight by about the learning
    rate a step, so pooled inputs of RMS 0.46 left the Dense's output at RMS 0.018 after five epochs at 5e-5, against
    the other branches' 0.4-2.1 (docs/training_history.md, "Session 66"); x 20 its Dense may move 20 times as far
    per step (it reached 0.076 after five epochs, still growing)."""
    x = layers.Conv3D(BRANCH_CHANNELS, 3, padding="same", activation="relu", name="head_zoom_conv1")(zoom_maps)
    x = layers.Conv3D(BRANCH_CHANNELS, 3, padding="same", activation="relu", name="head_zoom_conv2")(x)
    x = layers.Rescaling(ZOOM_SCALE, name="head_zoom_scale")(mean_and_max(x, "head_zoom"))
    return layers.Dense(hidden, kernel_initializer="zeros", name="head_zoom_dense")(x)


def mean_and_max(maps, prefix: str):
    """Global mean and max of each channel, concatenated: what a branch passes to its Dense."""
    return layers.Concatenate(name=f"{prefix}_pool")(
        [
            layers.GlobalAveragePooling3D(name=f"{prefix}_mean")(maps),
            layers.GlobalMaxPooling3D(name=f"{prefix}_max")(maps),
        ]
    )


def class_output(classifier: keras.Model) -> keras.KerasTensor:
    """The class output (the first one of a model that also predicts binding states)."""
    return classifier.get_layer(OUTPUT_LAYER).output


def model_input(model: keras.Model):
    """The model's input as its own structure: the one tensor of a one-input model, not a list of it (a model
    built on the list expects a list, and Keras warns at every call with a plain array)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def embedding_model(classifier: keras.Model) -> keras.Model:
    """The classifier with its output layer pruned: sub-tomogram -> embedding (R^32)."""
    return keras.Model(model_input(classifier), classifier.get_layer(EMBEDDING_LAYER).output, name="f_theta_embedding")


def with_dtype_policy(model: keras.Model, policy: str) -> keras.Model:
    """The same network with every layer under ``policy`` (``float32``, ``mixed_bfloat16``), weights copied.

    Keras 3 stores each layer's dtype policy in its config (a global policy is ignored when rebuilding), so the
    policy is set per layer: bf16 arithmetic for CPUs with AVX-512 BF16 / AMX, float32 for a saved model. The
    copy is rebuilt from the config, not cloned: ``clone_model`` would compile it like the original.
    """
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = policy
    clone = model.__class__.from_config(config)  # not compiled: no optimizer state in a saved model
    clone.set_weights(model.get_weights())
    return clone


def copy_matching_weights(target: keras.Model, source: keras.Model, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy the weights of every layer that has the same name and weight shapes in both models (but ``skip``)."""
    copied = []
    for layer in target.layers:
        if layer.name in skip:
            continue
        try:
            src = source.get_layer(layer.name)
        except ValueError:
            continue
        weights = src.get_weights()
        if weights and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied.append(layer.name)
    return copied


def copy_leading_class_directions(target: keras.Model, source: keras.Model) -> int:
    """Copy the source's class directions into the first columns of the target's (a model that learns the same
    classes first, then more): returns how many were copied; 0 when either has no cosine output or the target
    has fewer classes. The caller checks that the leading classes are the same structures."""
    try:
        src, dst = source.get_layer(OUTPUT_LAYER), target.get_layer(OUTPUT_LAYER)
    except ValueError:
        return 0
    if not (isinstance(src, CosineClassifier) and isinstance(dst, CosineClassifier)):
        return 0
    old, new = src.get_weights()[0], dst.get_weights()[0]
    if old.shape[0] != new.shape[0] or old.shape[1] > new.shape[1]:
        return 0
    new[:, : old.shape[1]] = old
    dst.set_weights([new])
    return int(old.shape[1])


def leading_convolutions(model: keras.Model, n: int) -> list:
    """The encoder's first ``n`` convolutions, in the order data passes them.

    Freezing them (``--freeze-convs``) saves most of a step's cost: the first two work at the full 40^3 box and
    take over half of the encoder's arithmetic, and a frozen layer needs no gradient of its weights, nor, at the
    front of the network, of its input (a bf16 step 1.80x as fast with two, 2.35x with four; docs/training_history.md,
    session 24, where the simulator bounded the whole run)."""
    convs = [layer for layer in model.layers if layer.name.startswith("encoder_conv")]
    if not 0 <= n <= len(convs):
        raise InputError(f"freeze_convs = {n}: the encoder has {len(convs)} convolutions (0 to {len(convs)})")
    return convs[:n]
