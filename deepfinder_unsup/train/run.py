"""``train``: the classes and the model to start from, the batches (a data set or simulation on the fly), the
fit with its callbacks and watchdog, and the selected model written with its card."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from ..batches import one_hot
from ..io.dataset import SubtomoDataset, read_dataset
from ..io.files import InputError, atomic_path
from ..log import logger
from ..model.card import save_model
from ..model.classifier import with_dtype_policy
from ..simulate.keras_source import binding_one_hot
from ..watchdog import StallWatchdog
from .callbacks import EpochModels, WatchdogMarks, best_epoch_in_history, epoch_callbacks
from .config import TrainConfig, check_config, selection_mode, training_precision
from .network import (
    build_training_model,
    compile_classifier,
    learning_rate_of,
    start_shape_output,
    with_init_model_defaults,
)
from .record import evaluate_classifier, model_card, plot_history, samples_seen, simulated_anew
from .sampling import BalancedBatches, check_compatible, relabel_by_name

FIRST_STEP_BOUND_S = 600.0  # the watchdog's bound on an epoch's first step (its batches simulated, the step traced)


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
    config = with_init_model_defaults(config or TrainConfig())
    check_config(config, simulation)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    config = replace(config, precision=training_precision(config.precision))
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        return _train(train_data, val_data, out_dir, config, resume, command, verbose, simulation)
    finally:
        keras.mixed_precision.set_global_policy("float32")


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
    check_compatible(train_data, val_data)
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
    weights = (config.binding_weight, config.shape_weight)
    compile_classifier(model, lr, config.loss, config.scale, config.margin, *weights, focal_gamma=config.focal_gamma)
    with atomic_path(out_dir / "init.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(init_info))
    return model, 0, init_info


def _ask_simulation_for(simulation, config: TrainConfig, out_dir: Path) -> None:
    """Tell the on-the-fly source what the losses need of its batches: pairs, drawn-once structures, reuse,
    binding states, one acquisition per batch or per view."""
    if config.view_weight > 0:
        simulation.view_pairs = True
    if config.contrast_weight > 0:
        simulation.instance_pairs = True
        simulation.fresh_share = config.fresh_share
        simulation.fresh_mass_band = config.fresh_mass_band
        simulation.fresh_mirrors = config.fresh_mirrors
        simulation.fresh_bound = config.fresh_bound
    if config.reuse > 1:
        simulation.reuse, simulation.cache_dir = config.reuse, str(_fresh_dir(out_dir / "reuse_cache"))
    if config.binding_weight > 0:
        simulation.with_binding = True
    if config.shape_weight > 0:
        simulation.with_shape = True
    simulation.one_acquisition_per_batch = config.one_acquisition_per_batch
    simulation.one_acquisition_per_view = config.one_acquisition_per_view


def _remove_an_earlier_runs_checkpoints(out_dir: Path) -> None:
    """A run that starts at epoch 0 in a folder an earlier run used (``--overwrite``; the API) removes that run's
    checkpoints and kept epochs: its best.keras would be written as this run's model when no epoch of this one
    scored, and its later epoch_NNN.keras would sit among this run's as if they were."""
    for path in [
        out_dir / "best.keras",
        out_dir / "last.keras",
        out_dir / "state.json",
        *out_dir.glob("epoch_*.keras"),
    ]:
        path.unlink(missing_ok=True)


def _fresh_dir(path: Path) -> Path:
    """An empty folder at ``path`` (what a killed run left there removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _train(
    train_data, val_data, out_dir: Path, config: TrainConfig, resume: bool, command, verbose: int, simulation
) -> Path:
    mode = selection_mode(config)
    c = _training_classes(train_data, val_data, config, simulation)
    classes, steps = c.classes, c.steps
    val_data = relabel_by_name(val_data, c.names)
    if c.box != val_data.subtomograms.shape[1] or abs(c.voxel_size - val_data.voxel_size) > 1e-6:
        raise InputError(
            f"training and validation data differ: box {c.box} at {c.voxel_size} Å vs "
            f"{val_data.subtomograms.shape[1]} at {val_data.voxel_size} Å"
        )
    model, initial_epoch, init_info = _start_model(out_dir, config, c, resume)
    if initial_epoch == 0:
        _remove_an_earlier_runs_checkpoints(out_dir)
    if simulation is None:
        batches = BalancedBatches(
            train_data.subtomograms, train_data.labels, classes, config.batch_size, steps, config.seed, config.max_shift
        )
    else:
        batches = simulation
        _ask_simulation_for(simulation, config, out_dir)
        if config.shape_weight > 0 and initial_epoch == 0:
            init_info["shape_start_r2"] = round(start_shape_output(model, simulation, config.seed), 4)
            logger.info(f"shape output started at its least-squares readout (R^2 {init_info['shape_start_r2']})")
    batches.epoch = initial_epoch
    x_val = val_data.subtomograms[..., None]
    y_classes = one_hot(val_data.labels, classes)
    y_val = validation_targets(y_classes, config, simulation)
    callbacks = epoch_callbacks(out_dir, config, mode, initial_epoch, resume, steps)
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
    card = card_for(best_epoch_in_history(out_dir, config.select_by, mode), epochs_done, report)
    path = save_model(best, out_dir / "model.keras", card, overwrite=True)
    plot_history(out_dir)
    return path


def validation_targets(y_classes: np.ndarray, config: TrainConfig, simulation):
    """The validation rows' targets for each output: the classes, then their binding states and their structures'
    shape descriptors where the model predicts them (the negatives' zeros: the validation loss only reports)."""
    targets = [y_classes]
    if config.binding_weight > 0:
        targets.append(binding_one_hot(y_classes, simulation.binding_states()))
    if config.shape_weight > 0:
        targets.append(simulation.class_shapes()[np.argmax(y_classes, axis=1)])
    return targets[0] if len(targets) == 1 else tuple(targets)


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
