"""Training f_theta as a classifier of simulated sub-tomograms (Moebel & Kervrann 2022, section 3).

Adam (lr 1e-4, betas 0.9 / 0.999, eps 1e-8), categorical cross-entropy, batch 64, class-balanced batches
(each sample's class drawn uniformly, DeepFinder's resampling), augmentation by DeepFinder's 180 degree rotation
about the tilt axis (y) and a random shift of up to 2 voxels. The encoder starts from DeepFinder's weights
when given. Validation on a separate data set, best-model checkpoint (validation loss), early stopping,
CSV log, resumable from the last epoch; at the end a training-curve plot, a validation confusion matrix and
the k-means V-measure of the validation embeddings.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ._version import __version__
from .batches import SeededBatches, one_hot
from .io.dataset import SubtomoDataset, read_dataset
from .io.files import InputError
from .model.card import save_model
from .model.classifier import build_classifier, embedding_model
from .model.deepfinder import load_deepfinder_weights


@dataclass
class TrainConfig:
    head: str = "flatten"
    epochs: int = 20
    steps_per_epoch: int | None = None   # default: one pass over the training set
    batch_size: int = 64
    learning_rate: float = 1e-4
    deepfinder_weights: str | None = None
    freeze_encoder: bool = False
    patience: int = 5
    seed: int = 0
    max_minutes: float | None = None     # stop cleanly after this wall time
    max_shift: int = 2
    monitor_data: str | None = None      # labelled data set of classes NOT trained on: k-means V-measure per epoch
    select_by: str = "val_loss"          # checkpoint criterion: 'val_loss' or 'monitor_v_measure'


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

    def __init__(self, volumes: np.ndarray, labels: np.ndarray, classes: np.ndarray, batch_size: int,
                 steps: int, seed: int, max_shift: int = 2, **kwargs):
        super().__init__(steps, seed, **kwargs)
        self.volumes, self.labels, self.classes = volumes, labels, classes
        self.batch_size, self.max_shift = batch_size, max_shift

    def make_batch(self, rng: np.random.Generator):
        sel = balanced_indices(self.labels, self.batch_size, rng)
        x = augment(self.volumes[sel], rng, self.max_shift)
        return x[..., None], one_hot(self.labels[sel], self.classes)


class WallClockLimit(keras.callbacks.Callback):
    """Stop training after ``minutes`` of wall time (checked after each epoch)."""

    def __init__(self, minutes: float | None):
        super().__init__()
        self.deadline = time.time() + 60 * minutes if minutes else None

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline and time.time() > self.deadline:
            self.model.stop_training = True


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
        emb = embedding_model(self.model).predict(self.x, batch_size=64, verbose=0)
        k = len(np.unique(self.truth))
        pred = KMeans(k, n_init=10, random_state=0).fit_predict(emb)
        if logs is not None:
            logs["monitor_v_measure"] = float(v_measure_score(self.truth, pred))


class SaveState(keras.callbacks.Callback):
    """After each epoch: the last model (for resuming) and the epoch number."""

    def __init__(self, out_dir: Path):
        super().__init__()
        self.out_dir = out_dir

    def on_epoch_end(self, epoch, logs=None):
        self.model.save(self.out_dir / "last.keras")
        (self.out_dir / "state.json").write_text(json.dumps({"epoch": epoch + 1}))


def compile_classifier(model: keras.Model, learning_rate: float = 1e-4) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
                  loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=False)


def train(train_data: SubtomoDataset, val_data: SubtomoDataset, out_dir: str | os.PathLike,
          config: TrainConfig | None = None, resume: bool = False, command: str | None = None,
          verbose: int = 2) -> Path:
    """Train f_theta on ``train_data``, select on ``val_data``; writes ``out_dir/model.keras`` (+ card),
    ``history.csv``, ``training_curves.png``, ``confusion_matrix.png/json``. Returns the model path."""
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    classes = np.array(sorted(set(train_data.labels) | set(val_data.labels)))
    _check_compatible(train_data, val_data)
    box = train_data.subtomograms.shape[1]
    initial_epoch = 0
    if resume and (out_dir / "last.keras").exists():
        model = keras.models.load_model(out_dir / "last.keras", compile=True)
        initial_epoch = json.loads((out_dir / "state.json").read_text())["epoch"]
    else:
        model = build_classifier(len(classes), box, config.head)
        if config.deepfinder_weights:
            load_deepfinder_weights(model, config.deepfinder_weights, encoder_only=True)
        if config.freeze_encoder:
            for layer in model.layers:
                if layer.name.startswith("encoder_"):
                    layer.trainable = False
        compile_classifier(model, config.learning_rate)
    steps = config.steps_per_epoch or max(1, len(train_data.labels) // config.batch_size)
    batches = BalancedBatches(train_data.subtomograms, train_data.labels, classes, config.batch_size, steps,
                              config.seed, config.max_shift)
    batches.epoch = initial_epoch
    x_val = val_data.subtomograms[..., None]
    y_val = one_hot(val_data.labels, classes)
    if config.select_by not in ("val_loss", "monitor_v_measure"):
        raise ValueError(f"select_by must be 'val_loss' or 'monitor_v_measure', got {config.select_by!r}")
    if config.select_by == "monitor_v_measure" and not config.monitor_data:
        raise InputError("selecting by monitor_v_measure needs a monitor data set (--monitor)")
    mode = "max" if config.select_by == "monitor_v_measure" else "min"
    callbacks = [ClusteringMonitor(read_dataset(config.monitor_data))] if config.monitor_data else []
    callbacks += [
        keras.callbacks.ModelCheckpoint(out_dir / "best.keras", monitor=config.select_by, mode=mode,
                                        save_best_only=True,
                                        initial_value_threshold=_best_so_far(out_dir, config.select_by, mode)
                                        if initial_epoch else None),
        keras.callbacks.EarlyStopping(monitor=config.select_by, mode=mode, patience=config.patience),
        keras.callbacks.CSVLogger(out_dir / "history.csv", append=resume),
        WallClockLimit(config.max_minutes),
        SaveState(out_dir),
    ]
    t0 = time.time()
    model.fit(batches, epochs=config.epochs, initial_epoch=initial_epoch, validation_data=(x_val, y_val),
              validation_batch_size=64, callbacks=callbacks, verbose=verbose)
    minutes = (time.time() - t0) / 60
    best = keras.models.load_model(out_dir / "best.keras", compile=False)
    report = evaluate_classifier(best, val_data, classes, out_dir)
    card = model_card(train_data, classes, config, command, minutes, report)
    path = save_model(best, out_dir / "model.keras", card, overwrite=True)
    _plot_history(out_dir)
    return path


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
        raise InputError(f"training and validation sets differ: box {a.subtomograms.shape[1:]} at "
                         f"{a.voxel_size} Å vs {b.subtomograms.shape[1:]} at {b.voxel_size} Å")


def evaluate_classifier(model: keras.Model, data: SubtomoDataset, classes: np.ndarray, out_dir: Path) -> dict:
    """Validation accuracy, confusion matrix (written), and k-means V-measure of the embeddings at k = classes."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import confusion_matrix, v_measure_score

    from .plot import plot_confusion
    probs = model.predict(data.subtomograms[..., None], batch_size=64, verbose=0)
    pred = classes[np.argmax(probs, axis=1)]
    truth = data.labels
    names = [data.class_names.get(int(c), str(c)) for c in classes]
    cm = confusion_matrix(truth, pred, labels=classes)
    emb = embedding_model(model).predict(data.subtomograms[..., None], batch_size=64, verbose=0)
    km = KMeans(len(classes), n_init=10, random_state=0).fit_predict(emb)
    report = {"val_accuracy": float((pred == truth).mean()), "val_v_measure_kmeans": float(v_measure_score(truth, km)),
              "n_val": int(len(truth)), "classes": names}
    (out_dir / "confusion_matrix.json").write_text(json.dumps({"classes": names, "matrix": cm.tolist(), **report},
                                                              indent=2))
    plot_confusion(cm, names, out_dir / "confusion_matrix.png", title="validation confusion matrix (%)")
    return report


def model_card(train_data: SubtomoDataset, classes: np.ndarray, config: TrainConfig, command: str | None,
               minutes: float, report: dict) -> dict:
    """The metadata a model file carries (see ``model.card``)."""
    return {
        "format": "deepfinder-unsup model", "package_version": __version__,
        "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
        "python": platform.python_version(),
        "voxel_size": float(train_data.voxel_size), "box_size": int(train_data.subtomograms.shape[1]),
        "normalisation": "per sub-tomogram zero mean, unit standard deviation",
        "classes": {int(c): train_data.class_names.get(int(c), str(c)) for c in classes},
        "embedding_layer": "embedding", "embedding_dim": 32, "head": config.head,
        "training": {"data": train_data.attrs.get("command", ""), "n_train": int(len(train_data.labels)),
                     "sim_config": train_data.attrs.get("sim_config"), "config": asdict(config),
                     "command": command or " ".join(sys.argv), "minutes": round(minutes, 1),
                     "machine": f"{platform.machine()} {os.cpu_count()} cores"},
        "validation": report,
    }


def _plot_history(out_dir: Path) -> None:
    from .plot import plot_training_curves
    if (out_dir / "history.csv").exists():
        plot_training_curves(out_dir / "history.csv", out_dir / "training_curves.png")


def train_from_files(train_path, val_path, out_dir, config: TrainConfig | None = None, resume: bool = False,
                     command: str | None = None, verbose: int = 2) -> Path:
    """:func:`train` on data set files (``deepfinder-unsup simulate`` output)."""
    return train(read_dataset(train_path), read_dataset(val_path), out_dir, config, resume, command, verbose)
