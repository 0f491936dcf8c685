"""The GPU training script (benchmarks/train_accelerator.py) continues the shipped model's recipe: every layer
of the init model carries over (its head included), and its workers draw the classes as ``train`` does."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_accelerator.py"
_spec = importlib.util.spec_from_file_location("train_accelerator", _PATH)
train_accelerator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_accelerator)


def _args(**kw) -> argparse.Namespace:
    base = {
        "head": None,
        "init_model": None,
        "view_weight": 0.0,
        "contrast_weight": 1.0,
        "temperature": 0.1,
        "flatten_drop": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_continuing_the_shipped_model_keeps_its_head_and_every_layer():
    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model, read_card

    path = resolve_model_path("general")
    card = read_card(path)
    args = _args(init_model=str(path))
    model, info = train_accelerator.initial_model(args, len(card["classes"]), 40, with_binding=True)
    source, _ = load_model(path)
    with_weights = {layer.name for layer in source.layers if layer.weights}
    assert args.head == card["head"] == "flatten_conv_zoom"  # session 4's script built "flatten" whatever the init
    assert args.flatten_drop == 1.0  # the shipped model since session 67 has no flatten path: none built back
    assert set(info["copied_layers"]) == with_weights  # the class directions and the head's convolutions too
    assert info["samples_seen_before"] == card["training"]["samples_seen_total"]
    for name in ("head_branch_dense", "head_zoom_dense", "class_output"):
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_without_an_init_model_the_head_is_the_wide_one():
    args = _args(contrast_weight=0.0)
    model, info = train_accelerator.initial_model(args, 3, 40, with_binding=False)
    assert args.head == "flatten_conv_wide" and info == {} and "head_branch_dense" in {la.name for la in model.layers}


def test_the_flatten_drop_reaches_the_accelerator_models_head():
    args = _args(contrast_weight=0.0, head="flatten_conv_bilinear", flatten_drop=0.5)
    model, _ = train_accelerator.initial_model(args, 3, 40, with_binding=False)
    assert model.get_layer("head_flatten_drop").rate == 0.5


def test_a_removed_flatten_path_stays_removed_in_the_accelerators_warm_restart(tmp_path):
    from deepfinder_unsup.model.card import save_model
    from deepfinder_unsup.model.classifier import build_classifier

    alone = tmp_path / "alone.keras"
    card = {"voxel_size": 10.0, "box_size": 40, "head": "flatten_conv", "training": {"config": {"flatten_drop": 1.0}}}
    save_model(build_classifier(3, 40, "flatten_conv", output="cosine", flatten_drop=1.0), alone, card)
    args = _args(contrast_weight=0.0, init_model=str(alone))
    model, _ = train_accelerator.initial_model(args, 3, 40, with_binding=False)
    assert (args.head, args.flatten_drop) == ("flatten_conv", 1.0)
    assert not model.get_layer("head_dense").trainable  # removed: frozen, out of the sum
    args = _args(contrast_weight=0.0, init_model=str(alone), flatten_drop=0.0)
    train_accelerator.initial_model(args, 3, 40, with_binding=False)
    assert args.flatten_drop == 0.0  # told otherwise


def test_fresh_pairs_enter_the_batch_without_breaking_its_pairing():
    """Row i pairs with row i + B/2 (the contrastive loss's rule) for the class pairs and the fresh ones alike;
    fresh rows have zero class and binding rows and sample weight 0, class rows weight 1."""
    p, f = 3, 2
    x = np.arange(2 * p, dtype=np.float32)[:, None] + 100  # class rows: 100..102, partners 103..105
    y = np.eye(4, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    b = np.eye(3, dtype=np.float32)[[0, 2, 1, 0, 2, 1]]
    fa = np.array([[200.0], [201.0]], np.float32)
    fb = np.array([[300.0], [301.0]], np.float32)
    xx, yy, bb, w = train_accelerator.fresh_pairs_in_batch(x, y, b, fa, fb)
    half = p + f
    assert len(xx) == len(yy) == len(bb) == len(w) == 2 * half
    pairs = [(float(xx[i, 0]), float(xx[i + half, 0])) for i in range(half)]
    assert pairs == [(100, 103), (101, 104), (102, 105), (200, 300), (201, 301)]
    np.testing.assert_array_equal(w, [1, 1, 1, 0, 0] * 2)
    np.testing.assert_array_equal(yy.sum(axis=1), w)
    np.testing.assert_array_equal(bb.sum(axis=1), w)
    np.testing.assert_array_equal(yy[:p], y[:p])
    np.testing.assert_array_equal(yy[half : half + p], y[p:])
