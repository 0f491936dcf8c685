"""Training f_theta as a classifier of simulated sub-tomograms (Moebel & Kervrann 2022, section 3).

Adam (lr 1e-4, betas 0.9 / 0.999, eps 1e-8), categorical cross-entropy, batch 64, class-balanced batches
(each sample's class drawn uniformly, DeepFinder's resampling), augmentation by DeepFinder's 180 degree rotation
about the tilt axis (y) and a random shift of up to 2 voxels. The encoder starts from DeepFinder's weights
when given. Validation on a separate data set, best-model checkpoint (validation loss), early stopping,
CSV log, resumable from the last epoch; at the end a training-curve plot, a validation confusion matrix and
the k-means V-measure of the validation embeddings. With ``binding_weight`` > 0 (structures simulated on the
fly), a second cross-entropy asks the embedding for the central particle's binding state (free, on a membrane,
transmembrane) as one direction shared by every class. With ``view_weight`` > 0, half of each batch is a
wedge-symmetric view of the other half (``volume.random_wedge_symmetric_view``) and a third loss asks each pair
for the same embedding direction (``model.classifier.PairedViewConsistency``). With ``contrast_weight`` > 0,
the second half holds other sub-tomograms of the first half's structures and a supervised contrastive loss
asks each to find its partner among the batch (``model.classifier.PairedContrast``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ._version import __version__
from .batches import SeededBatches, one_hot
from .embed import resolve_precision
from .io.dataset import SubtomoDataset, read_dataset
from .io.files import InputError, atomic_path
from .log import logger
from .model.card import save_model
from .model.classifier import (
    OUTPUT_LAYER,
    build_classifier,
    copy_leading_class_directions,
    copy_matching_weights,
    embedding_model,
    leading_convolutions,
    with_dtype_policy,
)
from .model.deepfinder import load_deepfinder_weights
from .model.losses import make_loss
from .simulate.keras_source import REPLAY_LAG, binding_one_hot, fresh_pairs_per_batch, replayed_item
from .watchdog import StallWatchdog

FIRST_STEP_BOUND_S = 600.0  # the watchdog's bound on an epoch's first step (its batches simulated, the step traced)


@dataclass
class TrainConfig:
    head: str = "flatten"
    epochs: int = 20
    steps_per_epoch: int | None = None  # default: one pass over the training set
    batch_size: int = 64
    learning_rate: float = 1e-4  # constant rate, or the peak of the warm-up + cosine schedule
    lr_schedule: str = "constant"  # 'constant' (the paper) or 'cosine' (linear warm-up, cosine decay)
    warmup_steps: int = 200
    loss: str = "ce"  # 'ce' (the paper), 'cosface' or 'arcface' (see model.losses)
    margin: float = 0.15
    scale: float = 24.0
    precision: str = "float32"  # 'float32' or 'mixed_bfloat16' (the saved model is float32 either way)
    deepfinder_weights: str | None = None
    init_model: str | None = None  # a .keras model (or a shipped model's name) whose layers start training
    freeze_encoder: bool = False
    freeze_convs: int = 0  # the encoder's first N convolutions (of 8) kept as they start: fewer gradients per step
    patience: int = 5
    seed: int = 0
    max_minutes: float | None = None  # stop cleanly after this wall time
    max_shift: int = 2
    monitor_data: str | None = None  # labelled data set of classes NOT trained on: k-means V-measure per epoch
    select_by: str = "val_loss"  # checkpoint criterion: 'val_loss' or 'monitor_v_measure'
    workers: int = 0  # on-the-fly simulation: processes making batches (0: in the main one)
    binding_weight: float = 0.0  # weight of the binding-state loss (0: no binding output)
    view_weight: float = 0.0  # weight of the paired-view consistency loss (0: none; batches of pairs otherwise)
    contrast_weight: float = 0.0  # weight of the paired contrastive loss (0: none; batches of same-class pairs)
    temperature: float = 0.1  # of the contrastive loss
    map_weight: float = 1.0  # on-the-fly simulation: classes from map files drawn this many times as often
    keep_epochs: bool = False  # also write every epoch's model, carded, as epoch_NNN.keras (to choose one later)
    reuse: int = 1  # on-the-fly simulation: each simulated batch trained on this many times (in other views)
    fresh_share: float = 0.0  # with the contrastive loss: share of pairs of procedural structures drawn once
    contrast_memory: int = 0  # with fresh_share: drawn-once embeddings kept as the contrastive loss's negatives
    stall_minutes: float = 10.0  # end the run (exit 4) when no training step finishes for this long (dead workers)


def balanced_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sample indices whose classes are drawn uniformly (then a sample uniformly within the class)."""
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    chosen = rng.integers(len(classes), size=n)
    return np.array([members[c][rng.integers(len(members[c]))] for c in chosen])


def augment(batch: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """180 degree rotation about y (flip z and x) with p = 0.5, and a random integer shift (periodic)."""
    out = batch.copy()
    for i in range(len(out)):
        if rng.uniform() < 0.5:
            out[i] = out[i, ::-1, :, ::-1]
        if max_shift:
            out[i] = np.roll(out[i], tuple(rng.integers(-max_shift, max_shift + 1, size=3)), axis=(0, 1, 2))
    return out


class BalancedBatches(SeededBatches):
    """Class-balanced, augmented batches drawn from an in-memory data set (x (b, B, B, B, 1), one-hot y)."""

    def __init__(
        self,
        volumes: np.ndarray,
        labels: np.ndarray,
        classes: np.ndarray,
        batch_size: int,
        steps: int,
        seed: int,
        max_shift: int = 2,
        **kwargs,
    ):
        super().__init__(steps, seed, **kwargs)
        self.volumes, self.labels, self.classes = volumes, labels, classes
        self.batch_size, self.max_shift = batch_size, max_shift

    def make_batch(self, rng: np.random.Generator):
        sel = balanced_indices(self.labels, self.batch_size, rng)
        x = augment(self.volumes[sel], rng, self.max_shift)
        return x[..., None], one_hot(self.labels[sel], self.classes)


class WallClockLimit(keras.callbacks.Callback):
    """Stop training so that it ends within ``minutes`` of wall time: after each epoch, stop when the next one,
    judged by the longest epoch so far, would end past the deadline (a batch job's wall time is not overrun)."""

    def __init__(self, minutes: float | None, clock=time.time):
        super().__init__()
        self.clock = clock
        self.deadline = clock() + 60 * minutes if minutes else None
        self.epoch_started = self.clock()
        self.longest_epoch = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest_epoch = max(self.longest_epoch, now - self.epoch_started)
        if self.deadline and now + self.longest_epoch > self.deadline:
            self.model.stop_training = True


class WatchdogMarks(keras.callbacks.Callback):
    """Tells a :class:`~deepfinder_unsup.watchdog.StallWatchdog` when training steps are expected (an epoch's steps)
    and when the main thread works in Python instead (validation, the other callbacks: listed first, so it pauses
    before they run)."""

    def __init__(self, watchdog: StallWatchdog):
        super().__init__()
        self.watchdog = watchdog

    def on_epoch_begin(self, epoch, logs=None):
        self.watchdog.expect_steps()

    def on_train_batch_end(self, batch, logs=None):
        self.watchdog.step_done()

    def on_test_begin(self, logs=None):
        self.watchdog.pause()

    def on_epoch_end(self, epoch, logs=None):
        self.watchdog.pause()

    def on_train_end(self, logs=None):
        self.watchdog.pause()


class ClusteringMonitor(keras.callbacks.Callback):
    """After each epoch: k-means (k = number of classes) V-measure of the embeddings of a labelled data set,
    logged as ``monitor_v_measure``. With classes absent from training, this is the held-out-class score that
    the method is about (clustering structures the network never saw)."""

    def __init__(self, data: SubtomoDataset):
        super().__init__()
        self.x = data.subtomograms[..., None]
        self.truth = data.labels

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.cluster import KMeans
        from sklearn.metrics import v_measure_score

        emb = embedding_model(self.model).predict(self.x, batch_size=64, verbose=0).astype(np.float64)
        k = len(np.unique(self.truth))
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        scores = {
            key: float(v_measure_score(self.truth, KMeans(k, n_init=4, random_state=0).fit_predict(x)))
            for key, x in (("monitor_v_measure", emb), ("monitor_v_measure_cos", unit))
        }
        if logs is not None:
            logs.update(scores)


def save_keras_atomically(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary file: a kill during the write keeps the previous file."""
    with atomic_path(path, overwrite=True) as tmp:
        keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras wants the suffix
        try:
            model.save(keras_tmp)
            os.replace(keras_tmp, tmp)
        finally:
            if keras_tmp.exists():
                keras_tmp.unlink()


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model when ``monitor`` improves (``mode`` 'min' or 'max'), atomically."""

    def __init__(self, path: Path, monitor: str, mode: str, best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.mode, self.best = path, monitor, mode, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = float(value)
            save_keras_atomically(self.model, self.path)


class SaveState(keras.callbacks.Callback):
    """After each epoch: the last model (for resuming) and the epoch number, both written atomically."""

    def __init__(self, out_dir: Path, samples_per_epoch: int):
        super().__init__()
        self.out_dir, self.samples_per_epoch = out_dir, samples_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        save_keras_atomically(self.model, self.out_dir / "last.keras")
        with atomic_path(self.out_dir / "state.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps({"epoch": epoch + 1, "samples_seen": (epoch + 1) * self.samples_per_epoch}))


class EpochModels(keras.callbacks.Callback):
    """After each epoch: the model as it is, in float32 and with its own card (``card_for(model, epoch_number)``), as
    ``epoch_NNN.keras``, so any epoch can be scored and shipped later, not only the monitor's best."""

    def __init__(self, out_dir: Path, card_for):
        super().__init__()
        self.out_dir, self.card_for = out_dir, card_for

    def on_epoch_end(self, epoch, logs=None):
        model = with_dtype_policy(self.model, "float32")
        path = self.out_dir / f"epoch_{epoch + 1:03d}.keras"
        save_model(model, path, self.card_for(model, epoch + 1), overwrite=True)


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
        from .embed import resolve_model_path
        from .model.card import load_model

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


def contrast_memory_of(config: TrainConfig) -> tuple[int, int, int]:
    """(memory, rows, delay) of the contrastive loss's cross-batch memory: the drawn-once rows of each batch's
    first half, usable once no later reuse of their batch can bring the same structures back."""
    if not config.contrast_memory:
        return (0, 0, 0)
    rows = fresh_pairs_per_batch(config.batch_size // 2, config.fresh_share)
    return (config.contrast_memory, rows, REPLAY_LAG * (config.reuse - 1))


def head_of_model(init_model: str | None) -> str:
    """The head an earlier model was built with (its card's ``head``), so that a warm restart keeps it; flatten
    (the paper's) without one."""
    if not init_model:
        return "flatten"
    from .embed import resolve_model_path
    from .model.card import read_card

    return str(read_card(resolve_model_path(init_model)).get("head", "flatten"))


def leads_class_list(earlier: dict, column_names: list[str] | None) -> bool:
    """Whether an earlier model's output columns (its card's label -> name, in sorted label order) are the
    first of ``column_names`` (the new model's, in order): column i is then the same structure in both."""
    if not earlier or not column_names:
        return False
    names = [earlier[key] for key in sorted(earlier, key=int)]
    return len(names) <= len(column_names) and names == list(column_names[: len(names)])


def train(
    train_data: SubtomoDataset | None,
    val_data: SubtomoDataset,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    resume: bool = False,
    command: str | None = None,
    verbose: int = 2,
    simulation=None,
) -> Path:
    """Train f_theta, select on ``val_data``; writes ``out_dir/model.keras`` (+ card), ``history.csv``,
    ``training_curves.png``, ``confusion_matrix.png/json``. Returns the model path.

    Training data: ``train_data`` (a data set in memory) or ``simulation`` (a ``SimulatedBatches``-like
    source: fresh class-balanced batches every step, never the same sub-tomogram twice). Validation classes
    are matched to the training classes by name.
    """
    config = config or TrainConfig()
    _check_config(config, simulation)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    config = replace(config, precision=training_precision(config.precision))
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        return _train(train_data, val_data, out_dir, config, resume, command, verbose, simulation)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def training_precision(requested: str) -> str:
    """The Keras policy for ``requested``: 'auto' is 'mixed_bfloat16' where bf16 is native (AVX-512 BF16, AMX, a
    GPU), else 'float32'; an explicit 'mixed_bfloat16' where bf16 would be emulated gets a warning (session 36, an
    AMD EPYC with AVX2 only: about one step a minute in bf16, beside other work, against 2.5 s in float32)."""
    if requested not in ("auto", "float32", "mixed_bfloat16"):
        raise InputError(f"training precision must be 'auto', 'float32' or 'mixed_bfloat16', got {requested!r}")
    if requested == "auto":
        return "mixed_bfloat16" if resolve_precision("auto") == "bfloat16" else "float32"
    if requested == "mixed_bfloat16" and resolve_precision("auto") != "bfloat16":
        logger.warning(
            "training in bf16 on a processor without native bf16 (no AVX-512 BF16, AMX or GPU): it is emulated and "
            "many times slower than float32; use --precision float32 or auto"
        )
    return requested


def _check_config(config: TrainConfig, simulation) -> None:
    """One clear error for a setting the training data or the other settings cannot honour, before any work."""
    if config.binding_weight > 0 and simulation is None:  # a data set file does not say how each class binds
        raise InputError("the binding-state loss needs structures simulated on the fly (--structures)")
    if config.view_weight > 0 and simulation is None:
        raise InputError("the paired-view loss needs structures simulated on the fly (--structures)")
    if config.map_weight != 1.0 and simulation is None:  # a data set file's classes are drawn evenly
        raise InputError("--map-weight needs structures simulated on the fly (--structures)")
    if config.view_weight > 0 and (config.batch_size < 2 or config.batch_size % 2):
        raise InputError(f"the paired-view loss needs an even batch size (pairs), got {config.batch_size}")
    if config.contrast_weight > 0:
        _check_contrast(config, simulation)
    _check_reuse(config, simulation)
    _check_fresh_share(config)
    _check_numbers(config)


def _check_numbers(config: TrainConfig) -> None:
    """Settings out of their range (a negative learning rate climbs the loss; a zero scale learns nothing)."""
    checks = [
        (0 < config.learning_rate < np.inf, f"--learning-rate must be positive, got {config.learning_rate}"),
        (config.epochs >= 1 and config.batch_size >= 1, "--epochs and --batch-size must be at least 1"),
        (config.steps_per_epoch is None or config.steps_per_epoch >= 1, "--steps-per-epoch must be at least 1"),
        (config.warmup_steps >= 0, f"--warmup-steps must be 0 or more, got {config.warmup_steps}"),
        (config.patience >= 0, f"--patience must be 0 or more, got {config.patience}"),
        (config.max_minutes is None or config.max_minutes > 0, f"--max-minutes must be positive: {config.max_minutes}"),
        (config.stall_minutes > 0, f"--stall-minutes must be positive, got {config.stall_minutes}"),
        (0 < config.scale < np.inf, f"--scale must be positive, got {config.scale}"),
        (0 <= config.margin < 1, f"--margin must be from 0 to below 1, got {config.margin}"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


@dataclass
class _Classes:
    """The training classes (output rows, sorted labels) and their names, the box and the steps of an epoch."""

    classes: np.ndarray
    names: dict
    box: int
    voxel_size: float
    steps: int


def _training_classes(train_data, val_data, config: TrainConfig, simulation) -> _Classes:
    """The classes of the simulation, or of a data set file and its validation set together (by name)."""
    if simulation is not None:
        names = dict(simulation.class_names)
        box, voxel_size = simulation.config.box_size, simulation.config.voxel_size
        steps = config.steps_per_epoch or 100
        return _Classes(np.array(sorted(names)), names, box, voxel_size, steps)
    names = dict(train_data.class_names)
    _check_compatible(train_data, val_data)
    box, voxel_size = train_data.subtomograms.shape[1], train_data.voxel_size
    steps = config.steps_per_epoch or max(1, len(train_data.labels) // config.batch_size)
    classes = np.array(sorted(set(train_data.labels) | set(val_data.labels)))
    names.update({int(c): val_data.class_names.get(int(c), str(c)) for c in classes if int(c) not in names})
    return _Classes(classes, names, box, voxel_size, steps)


def _start_model(out_dir: Path, config: TrainConfig, c: _Classes, resume: bool) -> tuple[keras.Model, int, dict]:
    """The model to train, the epoch it starts at and how it was initialised: a ``--resume``d run's last epoch,
    or a new model (compiled; ``init.json`` says where its weights came from)."""
    if resume and (out_dir / "last.keras").exists():
        model = keras.models.load_model(out_dir / "last.keras", compile=True)
        initial_epoch = json.loads((out_dir / "state.json").read_text())["epoch"]
        init_info = json.loads((out_dir / "init.json").read_text()) if (out_dir / "init.json").exists() else {}
        return model, initial_epoch, init_info
    column_names = [c.names.get(int(label), str(label)) for label in c.classes]
    model, init_info = build_training_model(len(c.classes), c.box, config, column_names)
    lr = learning_rate_of(config, config.epochs * c.steps)
    compile_classifier(model, lr, config.loss, config.scale, config.margin, config.binding_weight)
    with atomic_path(out_dir / "init.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(init_info))
    return model, 0, init_info


def _ask_simulation_for(simulation, config: TrainConfig, out_dir: Path) -> None:
    """Tell the on-the-fly source what the losses need of its batches: pairs, drawn-once structures, reuse,
    binding states."""
    if config.view_weight > 0:
        simulation.view_pairs = True
    if config.contrast_weight > 0:
        simulation.instance_pairs = True
        simulation.fresh_share = config.fresh_share
    if config.reuse > 1:
        simulation.reuse, simulation.cache_dir = config.reuse, str(_fresh_dir(out_dir / "reuse_cache"))
    if config.binding_weight > 0:
        simulation.with_binding = True


def _selection_mode(config: TrainConfig) -> str:
    """'max' for a monitor's V-measure, 'min' for the validation loss; refuses what cannot be selected by."""
    if config.select_by not in ("val_loss", "monitor_v_measure", "monitor_v_measure_cos"):
        raise InputError(
            f"select_by must be 'val_loss', 'monitor_v_measure' or 'monitor_v_measure_cos', got {config.select_by!r}"
        )
    if config.select_by.startswith("monitor") and not config.monitor_data:
        raise InputError(f"selecting by {config.select_by} needs a monitor data set (--monitor)")
    return "max" if config.select_by.startswith("monitor") else "min"


def _epoch_callbacks(out_dir: Path, config: TrainConfig, mode: str, initial_epoch: int, resume: bool, steps: int):
    """Monitor, best checkpoint, early stop, the history, the wall-clock limit and the resumable state."""
    callbacks = [ClusteringMonitor(read_dataset(config.monitor_data))] if config.monitor_data else []
    callbacks += [
        BestCheckpoint(
            out_dir / "best.keras",
            config.select_by,
            mode,
            _best_so_far(out_dir, config.select_by, mode) if initial_epoch else None,
        ),
        keras.callbacks.EarlyStopping(monitor=config.select_by, mode=mode, patience=config.patience),
        keras.callbacks.CSVLogger(out_dir / "history.csv", append=resume),
        WallClockLimit(config.max_minutes),
        SaveState(out_dir, steps * config.batch_size),
    ]
    return callbacks


def _train(
    train_data, val_data, out_dir: Path, config: TrainConfig, resume: bool, command, verbose: int, simulation
) -> Path:
    mode = _selection_mode(config)
    c = _training_classes(train_data, val_data, config, simulation)
    classes, steps = c.classes, c.steps
    val_data = relabel_by_name(val_data, c.names)
    if c.box != val_data.subtomograms.shape[1] or abs(c.voxel_size - val_data.voxel_size) > 1e-6:
        raise InputError(
            f"training and validation data differ: box {c.box} at {c.voxel_size} Å vs "
            f"{val_data.subtomograms.shape[1]} at {val_data.voxel_size} Å"
        )
    model, initial_epoch, init_info = _start_model(out_dir, config, c, resume)
    if simulation is None:
        batches = BalancedBatches(
            train_data.subtomograms, train_data.labels, classes, config.batch_size, steps, config.seed, config.max_shift
        )
    else:
        batches = simulation
        _ask_simulation_for(simulation, config, out_dir)
    batches.epoch = initial_epoch
    x_val = val_data.subtomograms[..., None]
    y_classes = one_hot(val_data.labels, classes)
    y_val: np.ndarray | tuple[np.ndarray, np.ndarray] = y_classes
    if config.binding_weight > 0:
        y_val = (y_classes, binding_one_hot(y_classes, simulation.binding_states()))
    callbacks = _epoch_callbacks(out_dir, config, mode, initial_epoch, resume, steps)
    t0 = time.time()
    per_epoch = steps * config.batch_size

    def card_for(kept_epoch: int | None, epochs_done: int, report: dict) -> dict:
        """The card of a model kept at ``kept_epoch`` of a run that has done ``epochs_done`` epochs so far."""
        return model_card(
            c.names,
            classes,
            c.box,
            c.voxel_size,
            config,
            command,
            (time.time() - t0) / 60,
            report,
            data=(train_data.attrs.get("command", "") if train_data is not None else simulation.describe()),
            n_train=len(train_data.labels) if train_data is not None else None,
            sim_config=(train_data.attrs.get("sim_config") if train_data is not None else simulation.config.to_dict()),
            extra={
                **samples_seen(kept_epoch, epochs_done, per_epoch, init_info),
                **simulated_anew(kept_epoch or epochs_done, steps, config),
                **init_info,
            },
        )

    if config.keep_epochs:
        callbacks.append(
            EpochModels(out_dir, lambda m, n: card_for(n, n, evaluate_classifier(m, val_data, classes, None)))
        )

    def remove_reuse_cache() -> None:
        if config.reuse > 1:
            shutil.rmtree(out_dir / "reuse_cache", ignore_errors=True)

    watchdog = StallWatchdog(60 * config.stall_minutes, cleanup=remove_reuse_cache, first_step_s=FIRST_STEP_BOUND_S)
    try:
        with watchdog:
            history = model.fit(
                batches,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                validation_data=(x_val, y_val),
                validation_batch_size=64,
                callbacks=[WatchdogMarks(watchdog), *callbacks],
                verbose=verbose,
                shuffle=config.reuse == 1,  # a reused batch is asked for after the one it reuses (the cache's order)
            )
    finally:
        remove_reuse_cache()
    epochs_done = initial_epoch + len(history.epoch)
    best = with_dtype_policy(keras.models.load_model(out_dir / "best.keras", compile=False), "float32")
    report = evaluate_classifier(best, val_data, classes, out_dir)
    card = card_for(_best_epoch(out_dir, config.select_by, mode), epochs_done, report)
    path = save_model(best, out_dir / "model.keras", card, overwrite=True)
    _plot_history(out_dir)
    return path


def _check_fresh_share(config: TrainConfig) -> None:
    """Structures drawn once teach through the contrastive loss only: it must be on."""
    if not 0.0 <= config.fresh_share <= 1.0:
        raise InputError(f"--fresh-structures must be a share between 0 and 1, got {config.fresh_share}")
    if config.fresh_share > 0 and config.contrast_weight <= 0:
        raise InputError("--fresh-structures needs the contrastive loss (--contrast-weight): nothing else sees them")
    if config.contrast_memory < 0:
        raise InputError(f"--contrast-memory must not be negative, got {config.contrast_memory}")
    if config.contrast_memory and not fresh_pairs_per_batch(config.batch_size // 2, config.fresh_share):
        raise InputError(
            "--contrast-memory keeps structures drawn once: it needs --fresh-structures with at least one such pair a "
            f"batch (batch {config.batch_size}, share {config.fresh_share})"
        )
    rows = contrast_memory_of(config)[1]
    if config.contrast_memory and config.contrast_memory < rows:
        raise InputError(f"--contrast-memory must hold at least one batch's {rows} drawn-once rows")


def _check_reuse(config: TrainConfig, simulation) -> None:
    """Reusing batches needs on-the-fly simulation (a data set file is reused by its epochs already)."""
    if int(config.reuse) != config.reuse or config.reuse < 1:
        raise InputError(f"--reuse must be a whole number of at least 1, got {config.reuse}")
    if config.reuse > 1 and simulation is None:
        raise InputError("--reuse needs structures simulated on the fly (--structures)")


def _fresh_dir(path: Path) -> Path:
    """An empty folder at ``path`` (what a killed run left there removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _check_contrast(config: TrainConfig, simulation) -> None:
    """The contrastive loss needs pairs of fresh draws: on-the-fly simulation, an even batch of at least 4."""
    if simulation is None:
        raise InputError("the contrastive loss needs structures simulated on the fly (--structures)")
    if config.view_weight > 0:
        raise InputError("the contrastive loss and the paired-view loss pair the batch differently: choose one")
    if config.batch_size < 4 or config.batch_size % 2:
        raise InputError(
            f"the contrastive loss needs an even batch size of at least 4 (pairs), got {config.batch_size}"
        )
    if not config.temperature > 0:
        raise InputError(f"the contrastive loss's temperature must be positive, got {config.temperature}")


def relabel_by_name(data: SubtomoDataset, class_names: dict[int, str]) -> SubtomoDataset:
    """``data`` with its labels renumbered to the training labels of the same class names."""
    by_name = {name: label for label, name in class_names.items()}
    mapping = {}
    for label in np.unique(data.labels):
        name = data.class_names.get(int(label), str(label))
        if name not in by_name:
            raise InputError(f"validation class {name!r} is not among the training classes")
        mapping[int(label)] = by_name[name]
    if all(k == v for k, v in mapping.items()):
        return data
    objl = [{**o, "label": mapping[int(o["label"])]} for o in data.objl]
    names = {mapping[int(k)]: v for k, v in data.class_names.items() if int(k) in mapping}
    return SubtomoDataset(data.subtomograms, objl, data.voxel_size, {**data.attrs, "class_names": names})


def samples_seen(best_epoch: int | None, epochs_done: int, per_epoch: int, init_info: dict) -> dict:
    """What the card says the written model has seen: the kept checkpoint's epochs (not the run's: a run that
    goes on past its best epoch trains on samples the kept model never saw), with the initial model's count."""
    kept = best_epoch or epochs_done
    return {
        "samples_seen": kept * per_epoch,
        "samples_seen_total": kept * per_epoch + init_info.get("samples_seen_before", 0),
        "samples_seen_run": epochs_done * per_epoch,
        "best_epoch": best_epoch,
    }


def simulated_anew(epochs: int, steps: int, config: TrainConfig) -> dict:
    """With ``--reuse``, how many of the kept model's samples of this run were simulated anew (the rest: reuses)."""
    if config.reuse == 1:
        return {}
    fresh_steps = sum(1 for i in range(steps) if replayed_item(i, config.reuse) is None)
    return {"samples_simulated": epochs * fresh_steps * config.batch_size}


def _best_epoch(out_dir: Path, key: str, mode: str) -> int | None:
    import csv

    path = out_dir / "history.csv"
    if not path.exists():
        return None
    with open(path) as fh:
        rows = [r for r in csv.DictReader(fh) if r.get(key)]
    if not rows:
        return None
    pick = (max if mode == "max" else min)(rows, key=lambda r: float(r[key]))
    return int(pick["epoch"]) + 1


def _best_so_far(out_dir: Path, key: str, mode: str) -> float | None:
    """The best value of ``key`` in an interrupted run's history (so resuming keeps the better checkpoint)."""
    import csv

    path = out_dir / "history.csv"
    if not path.exists():
        return None
    with open(path) as fh:
        values = [float(r[key]) for r in csv.DictReader(fh) if r.get(key)]
    return (max if mode == "max" else min)(values) if values else None


def _check_compatible(a: SubtomoDataset, b: SubtomoDataset) -> None:
    if a.subtomograms.shape[1:] != b.subtomograms.shape[1:] or abs(a.voxel_size - b.voxel_size) > 1e-6:
        raise InputError(
            f"training and validation sets differ: box {a.subtomograms.shape[1:]} at "
            f"{a.voxel_size} Å vs {b.subtomograms.shape[1:]} at {b.voxel_size} Å"
        )


def evaluate_classifier(model: keras.Model, data: SubtomoDataset, classes: np.ndarray, out_dir: Path | None) -> dict:
    """Validation accuracy, confusion matrix (written to ``out_dir`` unless None), and k-means V-measure of the
    embeddings at k = the number of classes in ``data`` (the training classes may be many more)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import confusion_matrix, v_measure_score

    from .plot import plot_confusion

    probs = model.predict(data.subtomograms[..., None], batch_size=64, verbose=0)
    if isinstance(probs, (list, tuple)):  # classes, then binding states
        probs = probs[0]
    pred = classes[np.argmax(probs, axis=1)]
    truth = data.labels
    shown = np.union1d(truth, pred)  # the classes in the validation data, and those it was mistaken for
    names = [data.class_names.get(int(c), str(c)) for c in shown]
    cm = confusion_matrix(truth, pred, labels=shown)
    emb = embedding_model(model).predict(data.subtomograms[..., None], batch_size=64, verbose=0)
    km = KMeans(len(np.unique(truth)), n_init=10, random_state=0).fit_predict(emb)
    report = {
        "val_accuracy": float((pred == truth).mean()),
        "val_v_measure_kmeans": float(v_measure_score(truth, km)),
        "n_val": int(len(truth)),
        "classes": names,
    }
    if out_dir is not None:
        with atomic_path(out_dir / "confusion_matrix.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps({"classes": names, "matrix": cm.tolist(), **report}, indent=2))
        plot_confusion(cm, names, out_dir / "confusion_matrix.png", title="validation confusion matrix (%)")
    return report


def model_card(
    class_names: dict,
    classes: np.ndarray,
    box: int,
    voxel_size: float,
    config: TrainConfig,
    command: str | None,
    minutes: float,
    report: dict,
    data: str = "",
    n_train: int | None = None,
    sim_config: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """The metadata a model file carries (see ``model.card``)."""
    return {
        "format": "deepfinder-unsup model",
        "package_version": __version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "voxel_size": float(voxel_size),
        "box_size": int(box),
        "normalisation": "per sub-tomogram zero mean, unit standard deviation",
        "classes": {int(c): class_names.get(int(c), str(c)) for c in classes},
        "embedding_layer": "embedding",
        "embedding_dim": 32,
        "head": config.head,
        "loss": config.loss,
        "embedding_geometry": "cosine" if config.loss != "ce" else "euclidean",
        "training": {
            "data": data,
            "n_train": n_train,
            "sim_config": sim_config,
            "config": asdict(config),
            "command": command or " ".join(sys.argv),
            "minutes": round(minutes, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            **(extra or {}),
        },
        "validation": report,
    }


def _plot_history(out_dir: Path) -> None:
    from .plot import plot_training_curves

    if (out_dir / "history.csv").exists():
        plot_training_curves(out_dir / "history.csv", out_dir / "training_curves.png")


def train_from_files(
    train_path,
    val_path,
    out_dir,
    config: TrainConfig | None = None,
    resume: bool = False,
    command: str | None = None,
    verbose: int = 2,
) -> Path:
    """:func:`train` on data set files (``deepfinder-unsup simulate`` output)."""
    return train(read_dataset(train_path), read_dataset(val_path), out_dir, config, resume, command, verbose)
