"""The network a run trains: f_theta built and initialised (DeepFinder's weights, an earlier model's layers and
class directions where the classes match), the learning-rate schedule, the optimiser and the losses."""

from __future__ import annotations

import keras

from ..io.files import InputError
from ..model.classifier import (
    OUTPUT_LAYER,
    build_classifier,
    copy_leading_class_directions,
    copy_matching_weights,
    leading_convolutions,
)
from ..model.deepfinder import load_deepfinder_weights
from ..model.losses import make_loss
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
) -> None:
    """Adam and the class loss; plus the binding-state cross-entropy (weighted) when the model predicts it."""
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    if len(model.outputs) == 1:
        model.compile(
            optimizer=optimizer, loss=make_loss(loss, scale, margin), weighted_metrics=["accuracy"], jit_compile=False
        )
        return
    model.compile(
        optimizer=optimizer,
        loss=[make_loss(loss, scale, margin), keras.losses.CategoricalCrossentropy()],
        loss_weights=[1.0, binding_weight],
        weighted_metrics=[["accuracy"], ["accuracy"]],
        jit_compile=False,
    )


def build_training_model(
    n_classes: int, box: int, config: TrainConfig, column_names: list[str] | None = None
) -> tuple[keras.Model, dict]:
    """A new f_theta for ``n_classes``, initialised from DeepFinder's weights and/or an earlier model.

    The output layer is copied only when the earlier model's classes are the first of ``column_names`` (the new
    output columns' class names): all of it for the same list, the earlier classes' directions for a list grown
    at its end (the new ones start fresh); another list of the same length starts it afresh."""
    model = build_classifier(
        n_classes,
        box,
        config.head,
        output="softmax" if config.loss == "ce" else "cosine",
        binding_states=config.binding_weight > 0,
        view_weight=config.view_weight,
        contrast_weight=config.contrast_weight,
        temperature=config.temperature,
        contrast_memory=contrast_memory_of(config),
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


def head_of_model(init_model: str | None) -> str:
    """The head an earlier model was built with (its card's ``head``), so that a warm restart keeps it; flatten
    (the paper's) without one."""
    if not init_model:
        return "flatten"
    from ..embed import resolve_model_path
    from ..model.card import read_card

    return str(read_card(resolve_model_path(init_model)).get("head", "flatten"))


def leads_class_list(earlier: dict, column_names: list[str] | None) -> bool:
    """Whether an earlier model's output columns (its card's label -> name, in sorted label order) are the
    first of ``column_names`` (the new model's, in order): column i is then the same structure in both."""
    if not earlier or not column_names:
        return False
    names = [earlier[key] for key in sorted(earlier, key=int)]
    return len(names) <= len(column_names) and names == list(column_names[: len(names)])
