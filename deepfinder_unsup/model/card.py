"""Model files: a Keras ``.keras`` archive that carries its model card (``deepfinder_unsup_card.json``).

The card says what the model expects and where it came from: voxel size, box size, class names,
normalisation, training data and command, package / TensorFlow / Keras versions, scores.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import keras

from ..io.files import InputError, atomic_path, require_file

CARD_NAME = "deepfinder_unsup_card.json"


def save_model(model: keras.Model, path: str | os.PathLike, card: dict, overwrite: bool = False) -> Path:
    """Save ``model`` as ``.keras`` with ``card`` inside the archive, atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise InputError(f"{path}: model files end in .keras")
    with atomic_path(path, overwrite) as tmp:
        keras_tmp = tmp.with_name(tmp.name + ".keras")
        try:
            model.save(keras_tmp)
            with zipfile.ZipFile(keras_tmp, "a") as zf:
                zf.writestr(CARD_NAME, json.dumps(card, indent=2, default=str))
            shutil.move(keras_tmp, tmp)
        finally:
            if keras_tmp.exists():
                keras_tmp.unlink()
    return path


REQUIRED_CARD_KEYS: dict[str, type | tuple[type, ...]] = {"voxel_size": (int, float), "box_size": int}


def read_card(path: str | os.PathLike) -> dict:
    """The model card inside a ``.keras`` file written by :func:`save_model` (checked: voxel and box size)."""
    path = require_file(path, "model file")
    try:
        with zipfile.ZipFile(path) as zf:
            if CARD_NAME not in zf.namelist():
                raise InputError(f"{path}: a Keras archive without a deepfinder-unsup model card")
            card = json.loads(zf.read(CARD_NAME))
    except (zipfile.BadZipFile, OSError, EOFError):
        raise InputError(f"{path}: not a model file (expected a .keras archive saved by deepfinder-unsup)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: its model card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise InputError(f"{path}: its model card is not a JSON object")
    for key, kind in REQUIRED_CARD_KEYS.items():
        if not isinstance(card.get(key), kind) or isinstance(card.get(key), bool):
            raise InputError(f"{path}: its model card lacks a valid {key!r}")
    if card["voxel_size"] <= 0 or card["box_size"] < 4:
        raise InputError(
            f"{path}: its model card has voxel_size {card['voxel_size']} and box_size "
            f"{card['box_size']}: not a usable model"
        )
    return card


def load_model(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """(Keras model, card) of a model file; a clear error if it is not one."""
    from . import classifier  # noqa: F401  (registers the package's own layers for deserialisation)

    card = read_card(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise InputError(f"{path}: the Keras model inside could not be loaded ({exc})") from None
    for layer in model.layers:  # layers frozen for one training run (--freeze-convs) are not frozen for the next use
        layer.trainable = True
    return model, card


def card_summary(card: dict) -> list[str]:
    """A model card in a few lines a user reads: what the model takes and gives, what it was trained on and how
    much, its validation scores and any adaptation (the whole card: ``info --json``)."""
    lines = [f"input: {card['box_size']}^3 voxel boxes at {card['voxel_size']:g} Å, {card.get('normalisation', '?')}"]
    geometry = " compared by angle (cosine)," if card.get("embedding_geometry") == "cosine" else ""
    lines.append(
        f"embedding: {card.get('embedding_dim', '?')}-D (layer {card.get('embedding_layer', '?')!r}),{geometry} "
        f"head {card.get('head') or 'flatten'}, loss {card.get('loss') or 'ce'}"
    )
    classes = card.get("classes") or {}
    lines.append(f"classes trained: {len(classes)}")
    training = card.get("training") or {}
    if training.get("data"):
        lines.append(f"training data: {_shortened(str(training['data']), 300)}")
    seen = training.get("samples_seen_total", training.get("samples_seen"))
    where = f"{training.get('minutes', '?')} min on {training.get('machine', '?')}"
    if seen is not None:
        run = f", {training['samples_seen_run']:,} in its last run" if "samples_seen_run" in training else ""
        lines.append(f"sub-tomograms seen in training: {seen:,}{run} ({where})")
    elif training.get("n_train") is not None:
        lines.append(f"training set: {training['n_train']:,} sub-tomograms ({where})")
    validation = card.get("validation") or {}
    if validation:
        lines.append(
            f"validation: accuracy {validation.get('val_accuracy', float('nan')):.3f}, k-means V-measure "
            f"{validation.get('val_v_measure_kmeans', float('nan')):.3f} on {validation.get('n_val', '?')} "
            f"sub-tomograms of {len(validation.get('classes', []))} classes"
        )
    adaptation = card.get("adaptation")
    if adaptation:
        lines.append(
            f"adapted: {adaptation.get('method')} on {adaptation.get('n_picks')} picks "
            f"({adaptation.get('source', '')}), kept the {adaptation.get('kept')} model; from "
            f"{adaptation.get('input_model')} on {adaptation.get('date')}"
        )
    lines.append(
        f"written by deepfinder-unsup {card.get('package_version', '?')}, TensorFlow "
        f"{card.get('tensorflow_version', '?')}, Keras {card.get('keras_version', '?')}"
    )
    return lines


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
