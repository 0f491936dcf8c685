"""What runs after each step or epoch: the held-out clustering monitor, the atomic checkpoints and resumable
state, every epoch's model, the wall-clock limit and the stall watchdog's marks; and the history they leave."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from ..io.dataset import SubtomoDataset, read_dataset
from ..io.files import atomic_path
from ..model.card import save_model
from ..model.classifier import (
    embedding_model,
    with_dtype_policy,
)
from ..watchdog import StallWatchdog
from .config import TrainConfig


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


def best_epoch_in_history(out_dir: Path, key: str, mode: str) -> int | None:
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


def best_value_in_history(out_dir: Path, key: str, mode: str) -> float | None:
    """The best value of ``key`` in an interrupted run's history (so resuming keeps the better checkpoint)."""
    import csv

    path = out_dir / "history.csv"
    if not path.exists():
        return None
    with open(path) as fh:
        values = [float(r[key]) for r in csv.DictReader(fh) if r.get(key)]
    return (max if mode == "max" else min)(values) if values else None


def epoch_callbacks(out_dir: Path, config: TrainConfig, mode: str, initial_epoch: int, resume: bool, steps: int):
    """Monitor, best checkpoint, early stop, the history, the wall-clock limit and the resumable state."""
    callbacks = [ClusteringMonitor(read_dataset(config.monitor_data))] if config.monitor_data else []
    callbacks += [
        BestCheckpoint(
            out_dir / "best.keras",
            config.select_by,
            mode,
            best_value_in_history(out_dir, config.select_by, mode) if initial_epoch else None,
        ),
        keras.callbacks.EarlyStopping(monitor=config.select_by, mode=mode, patience=config.patience),
        keras.callbacks.CSVLogger(out_dir / "history.csv", append=resume),
        WallClockLimit(config.max_minutes),
        SaveState(out_dir, steps * config.batch_size),
    ]
    return callbacks
