"""The network a run trains: f_theta built and initialised (DeepFinder's weights, an earlier model's layers and
class directions where the classes match), the learning-rate schedule, the optimiser and the losses."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np

from ..io.files import InputError
from ..model.classifier import (
    BINDING_LAYER,
    OUTPUT_LAYER,
    SHAPE_DIRECTION_LAYER,
    SHAPE_LAYER,
    build_classifier,
    copy_leading_class_directions,
    copy_matching_weights,
    leading_convolutions,
)
from ..model.deepfinder import load_deepfinder_weights
from ..model.losses import make_loss
from ..simulate.descriptors import N_DESCRIPTORS
from .config import TrainConfig, contrast_memory_of


def learning_rate_of(config: TrainConfig, total_steps: int):
    """The constant rate, or a linear warm-up to ``learning_rate`` followed by a cosine decay to 1 % of it."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule != "cosine":
        raise InputError(f"learning-rate schedule must be 'constant' or 'cosine', got {config.lr_schedule!r}")
    warmup = min(config.warmup_steps, max(1, total_steps // 4))
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate * 0.05,
        max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
    )


def compile_classifier(
    model: keras.Model,
    learning_rate=1e-4,
    loss: str = "ce",
    scale: float = 24.0,
    margin: float = 0.15,
    binding_weight: float = 0.0,
    shape_weight: float = 0.0,
    focal_gamma: float = 0.0,
) -> None:
    """Adam and the class loss (focal with ``focal_gamma`` > 0); plus the binding-state cross-entropy and the shape
    descriptors' mean squared error (each weighted) for the outputs the model has."""
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    if len(model.outputs) == 1:
        class_loss = make_loss(loss, scale, margin, focal_gamma)
        model.compile(optimizer=optimizer, loss=class_loss, weighted_metrics=["accuracy"], jit_compile=False)
        return
    names = set(model.output_names)
    losses, weights, metrics = [make_loss(loss, scale, margin, focal_gamma)], [1.0], [["accuracy"]]
    if BINDING_LAYER in names:
        losses.append(keras.losses.CategoricalCrossentropy())
        weights.append(binding_weight)
        metrics.append(["accuracy"])
    if SHAPE_LAYER in names:
        losses.append(keras.losses.MeanSquaredError())
        weights.append(shape_weight)
        metrics.append([])
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights, weighted_metrics=metrics, jit_compile=False)


def build_training_model(
    n_classes: int, box: int, config: TrainConfig, column_names: list[str] | None = None
) -> tuple[keras.Model, dict]:
    """A new f_theta for ``n_classes``, initialised from DeepFinder's weights and/or an earlier model.

    The output layer is copied only when the earlier model's classes are the first of ``column_names`` (the new
    output columns' class names): all of it for the same list, the earlier classes' directions for a list grown
    at its end (the new ones start fresh); another list of the same length starts it afresh. A head or
    ``flatten_drop`` left None is the earlier model's (:func:`head_and_flatten_drop`)."""
    head, flatten_drop = head_and_flatten_drop(config)
    model = build_classifier(
        n_classes,
        box,
        head,
        output="softmax" if config.loss == "ce" else "cosine",
        binding_states=config.binding_weight > 0,
        view_weight=config.view_weight,
        contrast_weight=config.contrast_weight,
        temperature=config.temperature,
        contrast_memory=contrast_memory_of(config),
        shape_descriptors=N_DESCRIPTORS if config.shape_weight > 0 else 0,
        flatten_drop=flatten_drop,
    )
    info: dict = {}
    if config.deepfinder_weights:
        load_deepfinder_weights(model, config.deepfinder_weights, encoder_only=True)
    if config.init_model:
        from ..embed import resolve_model_path
        from ..model.card import load_model

        path = resolve_model_path(config.init_model)
        source, card = load_model(path)
        same_classes = leads_class_list(card.get("classes", {}), column_names)
        # the output's column i is a class: copied only where it is the same structure (unknown names: by shape)
        skip = (OUTPUT_LAYER,) if column_names is not None and not same_classes else ()
        info = {
            "init_model": str(path),
            "copied_layers": copy_matching_weights(model, source, skip),
            "samples_seen_before": int(card.get("training", {}).get("samples_seen_total", 0)),
        }
        if OUTPUT_LAYER not in info["copied_layers"] and same_classes:
            info["kept_class_directions"] = copy_leading_class_directions(model, source)
    if config.freeze_encoder:
        for layer in model.layers:
            if layer.name.startswith("encoder_"):
                layer.trainable = False
    for layer in leading_convolutions(model, config.freeze_convs):
        layer.trainable = False
    return model, info


SHAPE_START_BATCHES = 16  # batches simulated to start the shape output at its least-squares readout


def start_shape_output(model: keras.Model, batches, seed: int, n_batches: int = SHAPE_START_BATCHES) -> float:
    """Set the shape output to the least-squares readout of the descriptors from the model's current embedding
    direction, on ``n_batches`` fresh batches of ``batches`` (a source that gives shape targets). Returns the
    readout's R^2 on them (weighted rows only).

    Why: the output is a Dense on a unit vector; at a fine-tuning rate (5e-5, Adam) its weights move about 0.1
    in a run, far less than a readout needs, so a random start would have the loss pull the embedding towards an
    arbitrary linear map. Started at the best readout, the loss pulls only where the embedding lacks the shape."""
    direction = keras.Model(model.inputs[0], model.get_layer(SHAPE_DIRECTION_LAYER).output)
    rng = np.random.default_rng([seed, 59])
    rows, targets = [], []
    for _ in range(n_batches):
        x, outputs, weights = batches.make_batch(rng)
        keep = np.asarray(weights[-1]) > 0
        rows.append(np.asarray(direction.predict(x[keep], batch_size=64, verbose=0), np.float64))
        targets.append(np.asarray(outputs[-1], np.float64)[keep])
    e, t = np.concatenate(rows), np.concatenate(targets)
    kernel, bias = ridge_readout(e, t)
    model.get_layer(SHAPE_LAYER).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    residual = ((t - e @ kernel - bias) ** 2).sum(axis=0)
    return float(1.0 - (residual / np.maximum(((t - t.mean(axis=0)) ** 2).sum(axis=0), 1e-12)).mean())


def ridge_readout(features: np.ndarray, targets: np.ndarray, alpha: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of the ridge regression of ``targets`` on ``features`` (the intercept not penalised)."""
    mean_f, mean_t = features.mean(axis=0), targets.mean(axis=0)
    centred = features - mean_f
    kernel = np.linalg.solve(centred.T @ centred + alpha * np.eye(features.shape[1]), centred.T @ (targets - mean_t))
    return kernel, mean_t - mean_f @ kernel


def head_of_model(init_model: str | None) -> str:
    """The head an earlier model was built with (its card's ``head``), so that a warm restart keeps it; flatten
    (the paper's) without one."""
    if not init_model:
        return "flatten"
    from ..embed import resolve_model_path
    from ..model.card import read_card

    return str(read_card(resolve_model_path(init_model)).get("head", "flatten"))


def flatten_drop_of_model(init_model: str | None, head: str) -> float:
    """The ``flatten_drop`` an earlier model was trained with (its card's training config), so that a warm
    restart of a model whose flatten path was removed (1) does not bring back that path, untrained for its
    branches, into the model's function; 0 without one, or for a head without pose-free branches."""
    if not init_model or not head.startswith("flatten_conv"):
        return 0.0
    from ..embed import resolve_model_path
    from ..model.card import read_card

    config = read_card(resolve_model_path(init_model)).get("training", {}).get("config") or {}
    return float(config.get("flatten_drop") or 0.0)


def head_and_flatten_drop(config: TrainConfig) -> tuple[str, float]:
    """The head and ``flatten_drop`` a run builds: those given, else the init model's (its card; flatten and 0
    without one), so that a warm restart, from the CLI or the API alike, continues the model it was given."""
    head = config.head or head_of_model(config.init_model)
    given = config.flatten_drop
    return head, given if given is not None else flatten_drop_of_model(config.init_model, head)


def with_init_model_defaults(config: TrainConfig) -> TrainConfig:
    """``config`` with its head and ``flatten_drop`` resolved (:func:`head_and_flatten_drop`): what the run's
    card records, and what a later ``--init-model`` of its model reads back."""
    head, flatten_drop = head_and_flatten_drop(config)
    return replace(config, head=head, flatten_drop=flatten_drop)


def leads_class_list(earlier: dict, column_names: list[str] | None) -> bool:
    """Whether an earlier model's output columns (its card's label -> name, in sorted label order) are the
    first of ``column_names`` (the new model's, in order): column i is then the same structure in both."""
    if not earlier or not column_names:
        return False
    names = [earlier[key] for key in sorted(earlier, key=int)]
    return len(names) <= len(column_names) and names == list(column_names[: len(names)])
