"""The paired-view loss: batches whose second half is a wedge-symmetric view of the first, a loss equal to the
mean cosine distance of the pairs (in training only), that makes the embedding invariant to the views, and a
model that still trains, saves, loads and embeds like any other."""

from __future__ import annotations

import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from deepfinder_unsup.io import InputError  # noqa: E402
from deepfinder_unsup.io.dataset import SubtomoDataset, read_dataset  # noqa: E402
from deepfinder_unsup.model.card import load_model  # noqa: E402
from deepfinder_unsup.model.classifier import (  # noqa: E402
    CONTRAST_LAYER,
    VIEW_LAYER,
    PairedContrast,
    build_classifier,
    copy_matching_weights,
    embedding_model,
    paired_contrastive_loss,
)
from deepfinder_unsup.simulate.config import fixed_config  # noqa: E402
from deepfinder_unsup.simulate.keras_source import SimulatedBatches  # noqa: E402
from deepfinder_unsup.simulate.structures import builtin_structure  # noqa: E402
from deepfinder_unsup.train import TrainConfig, compile_classifier, train  # noqa: E402
from deepfinder_unsup.volume import random_wedge_symmetric_view, wedge_symmetric_views  # noqa: E402

from .conftest import SMALL_BOX  # noqa: E402


def test_each_random_view_is_one_of_the_three_rotations_never_the_volume_itself():
    rng = np.random.default_rng(0)
    vols = rng.normal(size=(30, 6, 6, 6))
    views = random_wedge_symmetric_view(vols, rng)
    seen = set()
    for v, view in zip(vols, views):
        matches = [i for i, w in enumerate(wedge_symmetric_views(v[None])) if np.array_equal(w[0], view)]
        assert len(matches) == 1 and matches[0] != 0
        seen.add(matches[0])
    assert seen == {1, 2, 3}  # all three drawn over 30 volumes


def test_paired_batches_hold_each_particle_and_a_view_of_it_with_the_same_class():
    source = SimulatedBatches([builtin_structure("ring")], fixed_config(snr=1.0), batch_size=6, seed=3)
    source.view_pairs = True
    x, y = source[0]
    assert x.shape[0] == 6 and np.array_equal(y[:3], y[3:])
    for a, b in zip(x[:3, ..., 0], x[3:, ..., 0]):
        assert any(np.array_equal(b, w[0]) for w in wedge_symmetric_views(a[None])[1:])


def test_the_view_loss_is_the_mean_cosine_distance_of_the_pairs_in_training_only():
    model = build_classifier(3, box_size=8, output="cosine", view_weight=2.5, dropout=0.0)
    x = np.random.default_rng(1).normal(size=(6, 8, 8, 8, 1)).astype(np.float32)
    model(x, training=True)
    emb = np.asarray(embedding_model(model)(x))  # no dropout: the vectors the loss saw
    a, b = (e / np.linalg.norm(e, axis=1, keepdims=True) for e in (emb[:3], emb[3:]))
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), 2.5 * np.mean(1 - np.sum(a * b, axis=1)), rtol=1e-5)
    model(x, training=False)
    assert not model.losses
    plain = build_classifier(3, box_size=8, output="cosine", dropout=0.0)
    plain.set_weights(model.get_weights())  # the layer has no weights: the same network otherwise
    np.testing.assert_allclose(np.asarray(plain(x)), np.asarray(model(x)), atol=1e-6)


def test_the_view_loss_is_in_the_objective_and_training_lowers_it():
    """One training step's loss with the layer is the class loss plus the layer's loss at the same weights; with
    nothing else to optimise, training on pairs brings each particle and its view together."""
    rng = np.random.default_rng(4)
    vols = rng.normal(size=(16, 8, 8, 8)).astype(np.float32)
    vols[:, :2] += 3.0  # a bright face that the views move
    x = np.concatenate([vols, random_wedge_symmetric_view(vols, rng)])[..., None]
    y = np.eye(2, dtype=np.float32)[np.arange(32) % 2]
    with_loss = build_classifier(2, box_size=8, output="cosine", view_weight=50.0, dropout=0.0)
    without = build_classifier(2, box_size=8, output="cosine", dropout=0.0)
    without.set_weights(with_loss.get_weights())
    with_loss(x, training=True)
    view_loss = float(with_loss.losses[0])
    for model in (with_loss, without):
        compile_classifier(model, 0.0, "cosface", 16.0, 0.1)  # rate 0: the weights stay as they are
    difference = with_loss.train_on_batch(x, y)[0] - without.train_on_batch(x, y)[0]  # [loss, accuracy]
    np.testing.assert_allclose(difference, view_loss, rtol=1e-3)

    with_loss.compile(optimizer=keras.optimizers.Adam(1e-3), loss=lambda t, p: 0.0 * keras.ops.sum(p))
    with_loss.fit(x, y, batch_size=32, epochs=30, shuffle=False, verbose=0)
    with_loss(x, training=True)
    assert float(with_loss.losses[0]) < 0.2 * view_loss


def _two_shape_run() -> tuple[SimulatedBatches, SubtomoDataset]:
    """A batch source of two built-in shapes (batches of 4, 2 steps) and a 6-box validation set of them."""
    library = [builtin_structure("ring"), builtin_structure("globule")]
    config = fixed_config(snr=1.0, box_size=SMALL_BOX)  # the losses and their plumbing do not depend on the box
    source = SimulatedBatches(library, config, batch_size=4, steps_per_epoch=2, seed=0)
    x, y = SimulatedBatches(library, config, batch_size=6, seed=9)[0]
    objl = [{"label": int(np.argmax(r)), "x": 8.0, "y": 8.0, "z": 8.0} for r in y]
    return source, SubtomoDataset(x[..., 0], objl, 10.0, {"class_names": source.class_names})


def test_training_with_the_view_loss_end_to_end(tmp_path):
    source, val = _two_shape_run()
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, loss="cosface", view_weight=0.5, patience=5)
    path = train(None, val, tmp_path, cfg, verbose=0, simulation=source)
    assert source.view_pairs
    model, card = load_model(path)
    assert model.get_layer(VIEW_LAYER).weight == 0.5
    assert card["training"]["config"]["view_weight"] == 0.5
    with pytest.raises(InputError, match="paired-view loss needs an even batch size"):
        train(None, val, tmp_path / "odd", TrainConfig(batch_size=5, view_weight=1.0), verbose=0, simulation=source)
    with pytest.raises(InputError, match="paired-view loss needs structures simulated on the fly"):
        train(val, val, tmp_path / "file", TrainConfig(view_weight=1.0), verbose=0)


def test_instance_pairs_hold_two_different_sub_tomograms_of_the_same_structure():
    source = SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")], fixed_config(snr=1.0), 8, seed=3
    )
    source.instance_pairs = True
    x, y = source[0]
    assert x.shape[0] == 8 and np.array_equal(y[:4], y[4:])
    structures = [(a, b) for a, b in zip(x[:4, ..., 0], x[4:, ..., 0]) if a.std() > 0]  # negatives are empty here
    assert structures
    for a, b in structures:
        assert not any(np.allclose(b, w[0], atol=1e-3) for w in wedge_symmetric_views(a[None]))  # a new draw


def _nt_xent_reference(emb: np.ndarray, temperature: float, memory: np.ndarray | None = None) -> float:
    """NT-Xent written out row by row: -log softmax of the partner's cosine among the other rows (and the rows of
    ``memory``, unit vectors, when given)."""
    z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    n, half = len(z), len(z) // 2
    total = 0.0
    for i in range(n):
        others = [z[j] for j in range(n) if j != i] + ([] if memory is None else list(memory))
        sims = np.array([z[i] @ other for other in others]) / temperature
        partner = (i + half) % n
        total += -(z[i] @ z[partner]) / temperature + np.log(np.sum(np.exp(sims)))
    return total / n


def test_the_contrastive_loss_matches_nt_xent_written_out_and_acts_in_training_only():
    model = build_classifier(3, box_size=8, output="cosine", contrast_weight=0.7, temperature=0.2, dropout=0.0)
    x = np.random.default_rng(2).normal(size=(6, 8, 8, 8, 1)).astype(np.float32)
    model(x, training=True)
    emb = np.asarray(embedding_model(model)(x), np.float64)
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), 0.7 * _nt_xent_reference(emb, 0.2), rtol=1e-4)
    model(x, training=False)
    assert not model.losses


def test_the_contrastive_memory_keeps_drawn_once_rows_in_order_and_uses_them_only_past_the_delay():
    """``train --contrast-memory``: the last ``memory_rows`` rows of each first half are queued, newest first, at
    unit length; a row becomes a negative only when more than ``memory_delay`` steps old (a reused batch brings the
    same structures back within the delay: they must not be pushed apart), and empty slots never count."""
    layer = PairedContrast(1.0, 0.5, memory=5, memory_rows=2, memory_delay=1)
    batches = [np.random.default_rng(i).normal(size=(6, 3)).astype(np.float32) for i in range(4)]
    unit = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in batches]
    losses = []
    for b in batches:
        layer(b, training=True)
        losses.append(float(layer.losses[0]))
    # step 0: empty memory; step 1: batch 0's rows only 1 step old (not past the delay of 1); step 2: batch 0's
    # rows usable, batch 1's not; step 3: batches 0 and 1 (batch 0's second row dropped from a queue of 5)
    expected_memory = [None, None, unit[0][1:3], np.concatenate([unit[1][1:3], unit[0][1:2]])]
    for loss, b, memory in zip(losses, batches, expected_memory):
        np.testing.assert_allclose(loss, _nt_xent_reference(b.astype(np.float64), 0.5, memory), rtol=1e-5)
    queue = np.concatenate([unit[3][1:3], unit[2][1:3], unit[1][1:2]])
    np.testing.assert_allclose(np.asarray(layer.queue), queue, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer.written), [3, 3, 2, 2, 1])
    layer(batches[0], training=False)  # inference: nothing learnt, nothing remembered
    assert int(np.asarray(layer.steps)) == 4 and not layer.losses
    with pytest.raises(ValueError, match="memory_rows > 0"):
        PairedContrast(1.0, 0.1, memory=8)


def test_a_model_with_a_contrastive_memory_saves_and_loads_its_queue_and_embeds_like_one_without(tmp_path):
    """The queue is state a resumed run continues; it changes nothing at inference."""
    kwargs = {"box_size": 8, "output": "cosine", "contrast_weight": 1.0, "dropout": 0.0}
    model = build_classifier(3, contrast_memory=(16, 2, 4), **kwargs)
    x = np.random.default_rng(3).normal(size=(8, 8, 8, 8, 1)).astype(np.float32)
    for _ in range(3):
        model(x, training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    layer = loaded.get_layer(CONTRAST_LAYER)
    assert (layer.memory, layer.memory_rows, layer.memory_delay) == (16, 2, 4)
    np.testing.assert_array_equal(np.asarray(layer.queue), np.asarray(model.get_layer(CONTRAST_LAYER).queue))
    assert int(np.asarray(layer.steps)) == 3 and np.count_nonzero(np.asarray(layer.written) >= 0) == 6
    plain = build_classifier(3, **kwargs)
    copied = copy_matching_weights(plain, loaded)  # what ``train --init-model`` does between the two kinds
    assert CONTRAST_LAYER not in copied and "embedding" in copied
    np.testing.assert_allclose(embedding_model(plain)(x), embedding_model(loaded)(x), rtol=1e-6)


def test_the_contrastive_loss_is_low_when_pairs_coincide_and_high_when_they_are_swapped():
    e = np.eye(4, dtype=np.float32)
    together = np.concatenate([e, e])  # each row's partner is itself: found at once
    apart = np.concatenate([e, e[[1, 0, 3, 2]]])  # each partner is orthogonal; a stranger coincides instead
    low = float(paired_contrastive_loss(together, 0.1))
    high = float(paired_contrastive_loss(apart, 0.1))
    assert low < 0.01 and high > 9.0  # about 10 = 1 / temperature: the stranger wins by a cosine of 1


def test_training_with_the_contrastive_loss_end_to_end(tmp_path):
    source, val = _two_shape_run()
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, loss="cosface", contrast_weight=0.5, temperature=0.2)
    path = train(None, val, tmp_path, cfg, verbose=0, simulation=source)
    assert source.instance_pairs and not source.view_pairs
    model, card = load_model(path)
    assert model.get_layer(CONTRAST_LAYER).weight == 0.5 and model.get_layer(CONTRAST_LAYER).temperature == 0.2
    assert card["training"]["config"]["contrast_weight"] == 0.5
    bad = {
        "an even batch size of at least 4": TrainConfig(batch_size=6 + 1, contrast_weight=1.0),
        "pair the batch differently": TrainConfig(batch_size=4, contrast_weight=1.0, view_weight=1.0),
        "temperature must be positive": TrainConfig(batch_size=4, contrast_weight=1.0, temperature=0.0),
    }
    for message, config in bad.items():
        with pytest.raises(InputError, match=message):
            train(None, val, tmp_path / "bad", config, verbose=0, simulation=source)
    with pytest.raises(InputError, match="contrastive loss needs structures simulated on the fly"):
        train(val, val, tmp_path / "file", TrainConfig(contrast_weight=1.0), verbose=0)


def test_train_command_line_passes_the_contrastive_loss_and_refuses_a_zero_temperature(
    tmp_path, capsys, small_box_config
):
    """``--contrast-weight`` and ``--temperature`` reach the model and its card, with ``--fresh-structures`` (rows of
    weight 0 through the class and binding outputs), ``--fresh-mass-band``, ``--fresh-mirrors``, ``--fresh-bound``,
    ``--map-weight``, ``--negative-weight`` and ``--focal-gamma``; a zero temperature, structures drawn once without
    the contrastive loss or at a share above 1, and a mass band or mirror or bound pairs over one pair drawn once are
    refused."""
    from deepfinder_unsup.cli import main

    shapes = ["builtin:ring", "builtin:barrel"]
    small = ["--per-class", "3", "--config", str(small_box_config), "--quiet"]
    assert main(["simulate", "--structures", *shapes, *small, "--out", str(tmp_path / "val")]) == 0
    args = ["train", "--structures", *shapes, "--val", str(tmp_path / "val" / "dataset.h5"), "--loss", "cosface"]
    args += ["--batch-size", "4", "--steps-per-epoch", "2", "--epochs", "1", "--quiet"]
    args += ["--sim-config", str(small_box_config)]
    fresh = ["--fresh-structures", "0.5", "--binding-weight", "1"]  # weighted rows through both outputs
    one = ["--one-acquisition-per-batch"]
    band = ["--fresh-mass-band", "0.35", "--fresh-mirrors", "0.5", "--fresh-bound", "1"]
    band += ["--batch-size", "16"]  # 4 drawn once: 1 mirror pair, 1 bound pair
    contrast = ["--contrast-weight", "0.5", "--temperature", "0.2"]
    draws = ["--map-weight", "3", "--negative-weight", "5"]  # the labelled pairs' class draw
    draws += ["--focal-gamma", "2"]
    assert main([*args, "--out", str(tmp_path / "m"), *contrast, *fresh, *one, *band, *draws]) == 0
    model, card = load_model(tmp_path / "m" / "model.keras")
    assert model.get_layer(CONTRAST_LAYER).weight == 0.5
    assert (card["training"]["config"]["contrast_weight"], card["training"]["config"]["temperature"]) == (0.5, 0.2)
    assert card["training"]["config"]["fresh_share"] == 0.5
    assert card["training"]["config"]["one_acquisition_per_batch"] is True
    assert card["training"]["config"]["fresh_mass_band"] == 0.35
    assert (card["training"]["config"]["fresh_mirrors"], card["training"]["config"]["fresh_bound"]) == (0.5, 1)
    assert (card["training"]["config"]["map_weight"], card["training"]["config"]["negative_weight"]) == (3, 5)
    assert card["training"]["config"]["focal_gamma"] == 2
    capsys.readouterr()
    val = str(tmp_path / "val" / "dataset.h5")
    assert main(["train", "--train", val, "--val", val, "--out", str(tmp_path / "t"), *one, "--quiet"]) == 1
    assert "microscope: it needs --structures" in capsys.readouterr().err
    per_view = ["--one-acquisition-per-view"]
    assert main(["train", "--train", val, "--val", val, "--out", str(tmp_path / "t"), *per_view, "--quiet"]) == 1
    assert "--one-acquisition-per-view draws the simulation's microscope" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "v"), *per_view]) == 1  # no contrastive pairs to split
    assert "it needs --contrast-weight" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "v"), *contrast, *per_view, *one]) == 1
    assert "exclude each other" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "v"), *contrast, *per_view]) == 0
    assert load_model(tmp_path / "v" / "model.keras")[1]["training"]["config"]["one_acquisition_per_view"] is True
    assert main([*args, "--out", str(tmp_path / "f"), "--fresh-structures", "0.5"]) == 1  # no contrastive loss
    assert "--fresh-structures needs the contrastive loss" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "f"), "--contrast-weight", "1", "--fresh-structures", "1.5"]) == 1
    assert "share between 0 and 1, got 1.5" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "f"), "--contrast-weight", "1", "--contrast-memory", "64"]) == 1
    assert "--contrast-memory keeps structures drawn once" in capsys.readouterr().err
    banded = ["--contrast-weight", "1", "--fresh-structures", "0.5", "--fresh-mass-band", "0.3"]
    assert main([*args, "--out", str(tmp_path / "f"), *banded]) == 1  # batch 4: one pair drawn once, no band
    assert "--fresh-mass-band draws a batch's structures drawn once close in mass" in capsys.readouterr().err
    mirrors = ["--contrast-weight", "1", "--fresh-structures", "0.5", "--fresh-mirrors", "1"]
    assert main([*args, "--out", str(tmp_path / "f"), *mirrors]) == 1  # batch 4: one drawn once, no mirror pair
    assert "is not one structure beside its mirror" in capsys.readouterr().err
    bound = ["--contrast-weight", "1", "--fresh-structures", "0.5", "--fresh-bound", "1"]
    assert main([*args, "--out", str(tmp_path / "f"), *bound]) == 1  # batch 4: one drawn once, no bound copy
    assert "is not one structure beside its membrane-bound copy" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "f"), *bound[:-1], "1.5"]) == 1
    assert "--fresh-bound must be a share between 0 and 1, got 1.5" in capsys.readouterr().err
    memory = ["--contrast-weight", "1", *fresh, "--contrast-memory", "64", "--reuse", "2"]
    assert main([*args, "--out", str(tmp_path / "x"), *memory]) == 0
    layer = load_model(tmp_path / "x" / "model.keras")[0].get_layer(CONTRAST_LAYER)
    # batch 4 = 2 pairs, half drawn once: 1 row a step; a reused batch comes back 4 steps later
    assert (layer.memory, layer.memory_rows, layer.memory_delay) == (64, 1, 4)
    assert int(np.asarray(layer.steps)) == 2 and np.count_nonzero(np.asarray(layer.written) >= 0) == 2
    with pytest.raises(SystemExit) as refused:
        main([*args, "--out", str(tmp_path / "z"), "--contrast-weight", "1", "--temperature", "0"])
    assert refused.value.code == 2 and "--temperature" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_train_reuses_each_simulated_batch_in_order_across_worker_processes_and_leaves_no_cache(
    tmp_path, monkeypatch, caplog, capsys, small_box_config
):
    """``train --reuse 2``: every reuse finds its batch made (none made twice: Keras shuffles the order of a data
    source's batches unless told not to, and a reuse asked for before its batch would wait, then simulate it
    again), with 2 worker processes passing batches through a folder that is gone at the end; the card records
    the reuse; a reuse below 1 or one on a data set file is refused."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.simulate import keras_source

    monkeypatch.setattr(keras_source, "REPLAY_WAIT_S", 0.0)  # a batch not yet made is made again at once
    shapes = ["builtin:ring", "builtin:barrel"]
    val = tmp_path / "val" / "dataset.h5"
    small = ["--per-class", "3", "--config", str(small_box_config), "--quiet"]
    assert main(["simulate", "--structures", *shapes, *small, "--out", str(val.parent)]) == 0
    args = ["train", "--structures", *shapes, "--val", str(val), "--loss", "cosface", "--contrast-weight", "0.5"]
    args += ["--batch-size", "4", "--steps-per-epoch", "8", "--epochs", "1", "--reuse", "2", "--quiet"]
    args += ["--sim-config", str(small_box_config)]  # small boxes: the order of the batches is what is tested
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        assert main([*args, "--out", str(tmp_path / "in_order")]) == 0  # in this process: its log is caplog's
    assert "made twice" not in caplog.text
    monkeypatch.setattr(keras_source, "REPLAY_WAIT_S", 60.0)
    assert main([*args, "--out", str(tmp_path / "m"), "--workers", "2"]) == 0
    _, card = load_model(tmp_path / "m" / "model.keras")
    assert card["training"]["config"]["reuse"] == 2
    assert (card["training"]["samples_seen"], card["training"]["samples_simulated"]) == (32, 16)  # 8 steps of 4
    assert not (tmp_path / "m" / "reuse_cache").exists()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "z"), "--reuse", "0"]) == 1
    assert "--reuse must be a whole number of at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "z" / "model.keras").exists()
    with pytest.raises(InputError, match="--reuse needs structures simulated on the fly"):
        train(read_dataset(val), read_dataset(val), tmp_path / "file", TrainConfig(reuse=2), verbose=0)
