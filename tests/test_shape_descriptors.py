"""Shape descriptors (``train --shape-weight``): their values against closed forms for solids, their invariance to
turns and mirrors, the batches' targets against the structures each row was simulated from, and the output that
regresses them from the embedding's direction, trained end to end from the command line."""

from __future__ import annotations

import numpy as np
import pytest

from deepfinder_unsup.simulate.config import fixed_config
from deepfinder_unsup.simulate.descriptors import (
    DESCRIPTOR_NAMES,
    N_DESCRIPTORS,
    RADII_A,
    density_descriptors,
    shape_descriptors,
)
from deepfinder_unsup.simulate.procedural import ProceduralStructure
from deepfinder_unsup.simulate.structures import builtin_structure


def _ellipsoid(a: float, b: float, c: float, n: int = 81) -> np.ndarray:
    """A uniform solid ellipsoid, semi-axes a (z), b (y), c (x) voxels, in an n^3 box."""
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2
    return ((z / a) ** 2 + (y / b) ** 2 + (x / c) ** 2 <= 1).astype(np.float64)


def test_a_sphere_has_the_closed_form_volume_radius_of_gyration_and_radial_profile():
    """Uniform ball of radius R: V = 4/3 pi R^3, Rg = sqrt(3/5) R, axis ratios 1, mass within r = (r / R)^3."""
    radius_voxels, voxel = 30, 4.0  # R = 120 Å
    d = dict(zip(DESCRIPTOR_NAMES, density_descriptors(_ellipsoid(30, 30, 30), voxel)))
    radius_a = radius_voxels * voxel
    volume_nm3 = 4 / 3 * np.pi * (radius_a / 10) ** 3
    assert 10 ** (d["log_volume"] * 0.8 + 2.9) == pytest.approx(volume_nm3, rel=0.01)
    assert 60 * 10 ** (d["log_radius_of_gyration"] * 0.3) == pytest.approx(np.sqrt(3 / 5) * radius_a, rel=0.01)
    assert d["middle_axis_ratio"] == pytest.approx(1.0, abs=1e-6) and d["short_axis_ratio"] == pytest.approx(1.0)
    for r in RADII_A:
        expected = min(1.0, (r / radius_a) ** 3)
        assert (d[f"mass_within_{int(r)}A"] + 1) / 2 == pytest.approx(expected, abs=0.02)


def test_an_ellipsoid_axis_ratios_are_its_semi_axis_ratios():
    """A uniform ellipsoid's gyration tensor is diag(a^2, b^2, c^2) / 5: sqrt of the eigenvalue ratios = b/a, c/a."""
    d = dict(zip(DESCRIPTOR_NAMES, density_descriptors(_ellipsoid(16, 36, 24), 10.0)))
    assert (d["middle_axis_ratio"] + 1) / 2 == pytest.approx(24 / 36, abs=0.01)
    assert (d["short_axis_ratio"] + 1) / 2 == pytest.approx(16 / 36, abs=0.01)


def test_descriptors_do_not_change_when_the_structure_is_turned_or_mirrored():
    """A chiral procedural structure turned by 90 degrees, mirrored, or both: the same descriptors; another
    structure: other ones (so the check can fail)."""
    struct = ProceduralStructure(3, 10.0)
    reference = shape_descriptors(struct)
    for turned in (np.rot90(struct.density, 1, (0, 2)), struct.density[:, :, ::-1], np.rot90(struct.density[::-1])):
        np.testing.assert_allclose(density_descriptors(turned, 10.0), reference, atol=1e-5)
    assert np.abs(shape_descriptors(ProceduralStructure(5, 10.0)) - reference).max() > 0.05
    assert reference.shape == (N_DESCRIPTORS,) and np.all(np.abs(reference) < 2)


def test_batches_carry_each_row_structure_descriptors_and_weigh_the_negatives_out(monkeypatch):
    """Every row's target is the descriptors of the structure the scene simulated it from (recorded), the
    negatives' zeros of weight 0; drawn-once rows carry their own structure's, weight 1 (not the class rows')."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import keras_source

    simulated = []
    real = keras_source.simulate_subtomogram

    def recording(library, label, config, rng):
        simulated.append(library.structures[label - 1] if label else None)
        return real(library, label, config, rng)

    monkeypatch.setattr(keras_source, "simulate_subtomogram", recording)
    structures = [builtin_structure("ring"), builtin_structure("globule")]
    source = keras_source.SimulatedBatches(structures, fixed_config(), batch_size=12, seed=4)
    source.with_shape = source.with_binding = True
    _, (y, binding, shapes), (w_class, w_binding, w_shape) = source[0]
    expected = [np.zeros(N_DESCRIPTORS) if s is None else shape_descriptors(s) for s in simulated]
    np.testing.assert_allclose(shapes, np.stack(expected), atol=1e-6)
    np.testing.assert_array_equal(w_shape, [s is not None for s in simulated])
    assert 0 < w_shape.sum() < 12 and w_class.sum() == 12 and w_binding.sum() == 12  # negatives drawn, not all
    simulated.clear()
    source.instance_pairs, source.fresh_share = True, 0.5  # 3 of 6 pairs drawn once
    _, (y, _, shapes), (w_class, _, w_shape) = source[1]
    first_half = [np.zeros(N_DESCRIPTORS) if s is None else shape_descriptors(s) for s in simulated[:6]]
    np.testing.assert_allclose(shapes[:6], np.stack(first_half), atol=1e-6)
    np.testing.assert_array_equal(shapes[:6], shapes[6:])  # a pair's two views: one structure
    np.testing.assert_array_equal(w_shape[3:6], 1.0)
    np.testing.assert_array_equal(w_class[3:6], 0.0)
    assert all(isinstance(s, ProceduralStructure) for s in simulated[3:6])


def test_the_shape_output_is_linear_in_the_embedding_direction():
    """The output depends on the embedding's direction only: Dense(unit(e)), checked against the layer's weights."""
    pytest.importorskip("keras")
    from deepfinder_unsup.model.classifier import SHAPE_LAYER, build_classifier, embedding_model

    model = build_classifier(4, box_size=8, output="cosine", binding_states=True, shape_descriptors=N_DESCRIPTORS)
    assert len(model.outputs) == 3
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 8, 1)).astype(np.float32)
    emb = np.asarray(embedding_model(model)(x))
    kernel, bias = model.get_layer(SHAPE_LAYER).get_weights()
    expected = emb / np.linalg.norm(emb, axis=1, keepdims=True) @ kernel + bias
    np.testing.assert_allclose(np.asarray(model(x)[2]), expected, atol=1e-5)


def test_the_shape_output_starts_at_the_least_squares_readout_of_the_embedding():
    """``start_shape_output``: on the same batches, the output's predictions equal scikit-learn's ridge regression
    (alpha 1e-3, an intercept) of the descriptors on the unit embedding, and the R^2 it reports is that fit's."""
    pytest.importorskip("keras")
    import keras
    from sklearn.linear_model import Ridge

    from deepfinder_unsup.model.classifier import SHAPE_DIRECTION_LAYER, build_classifier
    from deepfinder_unsup.simulate.keras_source import SimulatedBatches
    from deepfinder_unsup.train.network import start_shape_output

    config = fixed_config(snr=1.0)
    config.box_size = 16
    structures = [builtin_structure(name) for name in ("ring", "globule", "barrel", "dumbbell")]
    source = SimulatedBatches(structures, config, batch_size=8, seed=1)
    source.with_shape = True
    model = build_classifier(5, box_size=16, output="cosine", shape_descriptors=N_DESCRIPTORS)
    r2 = start_shape_output(model, source, seed=3, n_batches=3)
    rng = np.random.default_rng([3, 59])  # the batches it fitted on, again
    direction = keras.Model(model.inputs[0], model.get_layer(SHAPE_DIRECTION_LAYER).output)
    xs, ts = [], []
    for _ in range(3):
        x, outputs, weights = source.make_batch(rng)
        xs.append(x[weights[-1] > 0])
        ts.append(outputs[-1][weights[-1] > 0])
    x, t = np.concatenate(xs), np.concatenate(ts).astype(np.float64)
    e = np.asarray(direction(x), np.float64)
    fitted = Ridge(alpha=1e-3).fit(e, t).predict(e)
    np.testing.assert_allclose(np.asarray(model(x)[-1]), fitted, atol=2e-3)
    expected = 1 - (((t - fitted) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0).clip(1e-12)).mean()
    assert r2 == pytest.approx(expected, abs=2e-3)


def test_train_with_the_shape_loss_end_to_end_and_refused_without_simulation(tmp_path, capsys, small_box_config):
    """``--shape-weight`` reaches the card and the history; the model embeds; a data set file is refused."""
    pytest.importorskip("keras")
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import SHAPE_LAYER

    shapes = ["builtin:ring", "builtin:barrel"]
    small = ["--per-class", "3", "--config", str(small_box_config), "--quiet"]
    assert main(["simulate", "--structures", *shapes, *small, "--out", str(tmp_path / "val")]) == 0
    val = str(tmp_path / "val" / "dataset.h5")
    args = ["train", "--structures", *shapes, "--val", val, "--loss", "cosface", "--batch-size", "8"]
    args += ["--steps-per-epoch", "2", "--epochs", "1", "--quiet", "--sim-config", str(small_box_config)]
    args += ["--contrast-weight", "1", "--fresh-structures", "0.5", "--binding-weight", "1", "--shape-weight", "2"]
    assert main([*args, "--out", str(tmp_path / "m")]) == 0
    model, card = load_model(tmp_path / "m" / "model.keras")
    assert card["training"]["config"]["shape_weight"] == 2.0 and model.get_layer(SHAPE_LAYER).units == N_DESCRIPTORS
    assert card["training"]["shape_start_r2"] <= 1.0  # the output was started at its least-squares readout
    header = (tmp_path / "m" / "history.csv").read_text().splitlines()[0]
    assert "shape_output_loss" in header and "val_shape_output_loss" in header
    capsys.readouterr()
    refused = ["train", "--train", val, "--val", val, "--out", str(tmp_path / "t"), "--shape-weight", "1", "--quiet"]
    assert main(refused) == 1
    assert "shape-descriptor loss needs structures simulated on the fly" in capsys.readouterr().err
