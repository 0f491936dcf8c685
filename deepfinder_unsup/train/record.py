"""What a trained model carries: the validation scores and confusion matrix, the samples it has seen, its card,
the training curves."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .._version import __version__
from ..io.dataset import SubtomoDataset
from ..io.files import atomic_path
from ..model.classifier import embedding_model
from ..simulate.keras_source import replayed_item
from .config import TrainConfig


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


def evaluate_classifier(model: keras.Model, data: SubtomoDataset, classes: np.ndarray, out_dir: Path | None) -> dict:
    """Validation accuracy, confusion matrix (written to ``out_dir`` unless None), and k-means V-measure of the
    embeddings at k = the number of classes in ``data`` (the training classes may be many more)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import confusion_matrix, v_measure_score

    from ..plot import plot_confusion

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


def plot_history(out_dir: Path) -> None:
    from ..plot import plot_training_curves

    if (out_dir / "history.csv").exists():
        plot_training_curves(out_dir / "history.csv", out_dir / "training_curves.png")
