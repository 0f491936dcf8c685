"""The network: DeepFinder weights against the reference activations, weight files of every generation,
the 32-D truncation, save/load, a short training run, the class-balanced sampler, the shipped model."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
from scipy import stats

keras = pytest.importorskip("keras")

from deepfinder_unsup.io import InputError  # noqa: E402
from deepfinder_unsup.model.card import load_model, read_card, save_model  # noqa: E402
from deepfinder_unsup.model.classifier import build_classifier, embedding_model  # noqa: E402
from deepfinder_unsup.model.deepfinder import build_deepfinder, build_encoder, load_deepfinder_weights  # noqa: E402
from deepfinder_unsup.train import balanced_indices  # noqa: E402

from .conftest import SMALL_BOX, shared_file  # noqa: E402

WEIGHTS = {"shrec19": ("net_weights_FINAL.h5", 13), "chlamydomonas": ("net_weights_chlamydomonas.h5", 4)}


@pytest.fixture(scope="module")
def reference():
    return np.load(shared_file("deepfinder/reference_activations.npz"))


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_encoder_reproduces_reference_activations(name, reference):
    fname, _ = WEIGHTS[name]
    enc = build_encoder(40)
    assert load_deepfinder_weights(enc, shared_file(f"deepfinder/weights/{fname}")) == 8
    out = enc(reference["input"], training=False).numpy()
    ref = reference[f"{name}_encoder"]
    assert np.abs(out - ref).max() < 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_full_network_reproduces_reference_segmentation(name, reference):
    fname, ncl = WEIGHTS[name]
    net = build_deepfinder(40, ncl)
    assert load_deepfinder_weights(net, shared_file(f"deepfinder/weights/{fname}")) == 15
    seg = net(reference["input"], training=False).numpy()[:, 20, 20, 20]
    np.testing.assert_allclose(seg, reference[f"{name}_segmentation_center"], atol=1e-4)


def _tf_keras2_weights_file(path, kernels):
    """A weights-only HDF5 as tf.keras 2.x writes it (root layer_names, per-layer weight_names)."""
    with h5py.File(path, "w") as h5:
        names = [f"conv3d_{i}" for i in range(len(kernels))] + ["max_pooling3d"]
        h5.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n, (k, b) in zip(names, kernels):
            g = h5.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()])
            g.create_dataset(f"{n}/kernel:0", data=k)
            g.create_dataset(f"{n}/bias:0", data=b)
        h5.create_group("max_pooling3d").attrs["weight_names"] = np.array([], dtype="S1")


def test_weight_files_of_every_generation(tmp_path, reference):
    src = build_encoder(40)
    load_deepfinder_weights(src, shared_file("deepfinder/weights/net_weights_FINAL.h5"))
    expected = src(reference["input"][:1]).numpy()
    # Keras 3 .weights.h5 (names 'conv3d', 'conv3d_1', ..., 'conv3d_10' sort naturally, not alphabetically)
    plain = keras.Sequential(
        [keras.Input((40, 40, 40, 1))]
        + [keras.layers.Conv3D(f, 3, padding="same") for f in (32, 32, 48, 48, 64, 64, 64, 64)]
    )
    convs = [layer for layer in src.layers if isinstance(layer, keras.layers.Conv3D)]
    for dst, s in zip(plain.layers, convs):
        dst.set_weights(s.get_weights())
    plain.save_weights(tmp_path / "k3.weights.h5")
    _tf_keras2_weights_file(tmp_path / "tfk2.h5", [c.get_weights() for c in convs])
    for f in ("k3.weights.h5", "tfk2.h5"):
        enc = build_encoder(40)
        load_deepfinder_weights(enc, tmp_path / f)
        np.testing.assert_allclose(enc(reference["input"][:1]).numpy(), expected, atol=1e-6)


def test_not_a_deepfinder_file_is_refused_and_model_untouched(tmp_path):
    enc = build_encoder(40)
    before = [w.copy() for w in enc.get_weights()]
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5.create_dataset("x", data=np.zeros(3))
    with pytest.raises(InputError, match="other.h5: not a Keras weight file"):
        load_deepfinder_weights(enc, tmp_path / "other.h5")
    wrong = [(np.zeros((3, 3, 3, 1, 16), np.float32), np.zeros(16, np.float32))] * 8
    _tf_keras2_weights_file(tmp_path / "wrong.h5", wrong)
    with pytest.raises(InputError, match="wrong.h5: not a DeepFinder encoder"):
        load_deepfinder_weights(enc, tmp_path / "wrong.h5")
    (tmp_path / "text.h5").write_text("no hdf5")
    with pytest.raises(InputError, match="text.h5: not an HDF5 weight file"):
        load_deepfinder_weights(enc, tmp_path / "text.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, enc.get_weights()))


@pytest.mark.parametrize(
    "head", ["flatten", "gap", "flatten_conv", "flatten_conv_wide", "flatten_conv_bilinear", "flatten_conv_zoom"]
)
def test_truncation_gives_32d_and_save_load_reproduces_embeddings(tmp_path, head, rng):
    clf = build_classifier(5, 40, head)
    emb = embedding_model(clf)
    x = rng.standard_normal((3, 40, 40, 40, 1)).astype(np.float32)
    out = emb(x).numpy()
    assert out.shape == (3, 32)
    save_model(clf, tmp_path / "m.keras", {"voxel_size": 10.0, "box_size": 40})
    again, card = load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(embedding_model(again)(x).numpy(), out)
    assert card == {"voxel_size": 10.0, "box_size": 40} == read_card(tmp_path / "m.keras")


def test_a_flatten_model_copied_into_the_conv_branch_head_is_the_same_function_until_trained(rng):
    from deepfinder_unsup.model.classifier import copy_matching_weights

    flat = build_classifier(5, 40, "flatten", output="cosine")
    x = rng.standard_normal((2, 40, 40, 40, 1)).astype(np.float32)
    conv = build_classifier(5, 40, "flatten_conv", output="cosine")
    copied = copy_matching_weights(conv, flat)
    assert {"head_dense", "embedding", "class_output"} <= set(copied)
    assert not {"head_conv1", "head_conv2", "head_branch_dense"} & set(copied)
    np.testing.assert_allclose(embedding_model(conv)(x).numpy(), embedding_model(flat)(x).numpy(), atol=1e-6)
    # the branch is live: a non-zero branch Dense changes the embedding
    dense = conv.get_layer("head_branch_dense")
    dense.set_weights([np.full_like(w, 0.1) for w in dense.get_weights()])
    assert np.abs(embedding_model(conv)(x).numpy() - embedding_model(flat)(x).numpy()).max() > 1e-3


@pytest.mark.parametrize(
    "source_head, target_head, new_layer, new_kernel_shape",
    [
        ("flatten_conv", "flatten_conv_wide", "head_wide_conv3", (3, 3, 3, 256, 256)),
        ("flatten_conv_wide", "flatten_conv_bilinear", "head_bilinear_dense", (32 * 33 // 2, 128)),
        ("flatten_conv_bilinear", "flatten_conv_zoom", "head_zoom_conv1", (3, 3, 3, 64, 64)),
    ],
)
def test_a_model_copied_into_the_next_larger_head_is_the_same_function_until_trained(
    rng, source_head, target_head, new_layer, new_kernel_shape
):
    from deepfinder_unsup.model.classifier import copy_matching_weights

    source = build_classifier(5, 40, source_head, output="cosine", binding_states=True)
    branch_denses = [
        layer for layer in source.layers if layer.name.startswith("head_") and layer.name.endswith("_dense")
    ]
    for layer in branch_denses:  # trained branches: their Dense no longer zero, so the copy must carry them
        if layer.name != "head_dense":
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])
    x = rng.standard_normal((2, 40, 40, 40, 1)).astype(np.float32)
    target = build_classifier(5, 40, target_head, output="cosine", binding_states=True)
    copied = copy_matching_weights(target, source)
    new = {layer.name for layer in target.layers if layer.get_weights()} - {layer.name for layer in source.layers}
    assert {layer.name for layer in branch_denses} | {"embedding", "binding_directions"} <= set(copied)
    assert new_layer in new and not new & set(copied)
    assert target.get_layer(new_layer).get_weights()[0].shape == new_kernel_shape
    np.testing.assert_allclose(embedding_model(target)(x).numpy(), embedding_model(source)(x).numpy(), atol=1e-6)
    new_dense = next(name for name in new if name.endswith("_dense"))  # the new branch is live once its Dense moves
    dense = target.get_layer(new_dense)
    dense.set_weights([np.full_like(w, 0.1) for w in dense.get_weights()])
    assert np.abs(embedding_model(target)(x).numpy() - embedding_model(source)(x).numpy()).max() > 1e-3


@pytest.mark.parametrize("factor", [2, 4])
def test_the_zoomed_centre_is_the_central_part_linearly_interpolated_at_fractional_steps(rng, factor):
    """Factor 2 (the zoom head's): voxel k is the input at box/4 + k/2; factor 4 (a second scale, the readout's):
    box*3/8 + (k - 1)/4; both clamped to the crop's edge voxels, checked against scipy's order-1 interpolation."""
    from scipy import ndimage

    from deepfinder_unsup.model.classifier import zoomed_centre

    box = 16
    inp = keras.Input((box, box, box, 1))
    zoom = keras.Model(inp, zoomed_centre(inp, factor, prefix=f"zoom{factor}"))
    volume = rng.standard_normal((box, box, box)).astype(np.float32)
    out = zoom(volume[None, ..., None]).numpy()[0, ..., 0]
    assert out.shape == (box, box, box)
    crop = {2: box // 4, 4: box * 3 // 8}[factor]
    axis = crop + (np.arange(box) - (factor - 1) // 2) / factor
    clamp = np.clip(axis, crop, crop + box // factor - 1)
    expected = ndimage.map_coordinates(volume, np.meshgrid(clamp, clamp, clamp, indexing="ij"), order=1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    inside = slice(factor, -factor)  # away from the crop's edges the clamp changes nothing
    unclamped = ndimage.map_coordinates(volume, np.meshgrid(axis, axis, axis, indexing="ij"), order=1)
    np.testing.assert_allclose(out[inside, inside, inside], unclamped[inside, inside, inside], atol=1e-5)


def test_the_zoom_branch_reads_the_same_encoder_as_the_box(rng):
    from deepfinder_unsup.model.classifier import zoomed_centre

    zoom = build_classifier(5, 40, "flatten_conv_zoom")
    convs = [layer for layer in zoom.layers if layer.name.startswith("encoder_conv")]
    assert len(convs) == 8  # one encoder, applied twice: its weights are shared, not copied
    encoder = build_encoder(40)
    for layer in encoder.layers:
        if layer.get_weights():
            layer.set_weights(zoom.get_layer(layer.name).get_weights())
    x = rng.standard_normal((2, 40, 40, 40, 1)).astype(np.float32)
    zoom_maps = keras.Model(zoom.inputs[0], zoom.get_layer("head_zoom_conv1").input)(x).numpy()
    inp = keras.Input((40, 40, 40, 1))
    expected = keras.Model(inp, encoder(zoomed_centre(inp)))(x).numpy()
    assert zoom_maps.shape == (2, 10, 10, 10, 64)
    np.testing.assert_allclose(zoom_maps, expected, rtol=1e-5, atol=1e-5)
    box_maps = keras.Model(zoom.inputs[0], zoom.get_layer("head_conv1").input)(x).numpy()
    np.testing.assert_allclose(box_maps, encoder(x).numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(box_maps - zoom_maps).max() > 1e-3  # the two passes see different inputs


def test_second_order_pooling_matches_a_numpy_gram_and_ignores_where_features_lie(rng):
    from deepfinder_unsup.model.classifier import SecondOrderPooling

    maps = rng.standard_normal((3, 4, 5, 6, 7)).astype(np.float32)
    pooled = SecondOrderPooling(eps=0.0)(maps).numpy()
    flat = maps.reshape(3, -1, 7).astype(np.float64)
    expected = []
    for box in flat:  # the reference, one box at a time: Gram matrix, upper triangle, signed root, unit RMS
        upper = (box.T @ box / len(box))[np.triu_indices(7)]
        root = np.sign(upper) * np.sqrt(np.abs(upper))
        expected.append(root / np.sqrt(np.mean(root**2)))
    np.testing.assert_allclose(pooled, np.array(expected), atol=1e-5)
    assert pooled.shape == (3, 28)
    np.testing.assert_allclose(SecondOrderPooling(eps=0.0, scale=10.0)(maps).numpy(), 10 * pooled, rtol=1e-5)
    shuffled = maps.reshape(3, -1, 7)[:, rng.permutation(120)].reshape(maps.shape)  # positions moved, content kept
    np.testing.assert_allclose(SecondOrderPooling(eps=0.0)(shuffled).numpy(), pooled, atol=1e-5)
    other = maps.copy()
    other[0, ..., 0] *= -1  # one feature's sign flipped: its co-occurrences change sign
    assert np.abs(SecondOrderPooling(eps=0.0)(other).numpy()[0] - pooled[0]).max() > 0.05
    assert np.isfinite(SecondOrderPooling()(np.zeros((1, 2, 2, 2, 3), np.float32)).numpy()).all()


def test_path_drop_zeroes_whole_samples_at_its_rate_unscaled_and_only_in_training(rng):
    from deepfinder_unsup.model.classifier import PathDrop

    x = rng.uniform(0.5, 1.5, (4000, 16)).astype(np.float32)
    layer = PathDrop(0.3, seed=5)
    np.testing.assert_array_equal(layer(x).numpy(), x)  # inference: the identity
    out = layer(x, training=True).numpy()
    dropped, kept = (out == 0).all(axis=1), (out == x).all(axis=1)
    assert (dropped | kept).all()  # a whole sample's path or none of it, and never rescaled
    assert stats.binomtest(int(dropped.sum()), len(x), 0.3).pvalue > 0.001
    removed = PathDrop(1.0)  # rate 1: the path removed, in training and at inference alike
    assert not removed(x).numpy().any() and not removed(x, training=True).numpy().any()
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
            PathDrop(rate)


def test_with_the_flatten_path_dropped_a_sample_is_embedded_by_the_branches_alone(tmp_path, rng):
    """In training, each sample's embedding is either the full head's or that of the same network with the flatten
    path's Dense zeroed (computed by a second model); at inference it is the full head's, so the shipped function
    is where the run starts; the rate survives saving."""
    from deepfinder_unsup.model.classifier import copy_matching_weights

    model = build_classifier(4, 40, "flatten_conv_wide", dropout=0.0, flatten_drop=0.5)
    for layer in model.layers:  # branches that carry something, so the two embeddings differ
        if layer.name in ("head_branch_dense", "head_wide_dense"):
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])
    plain = build_classifier(4, 40, "flatten_conv_wide", dropout=0.0)
    copy_matching_weights(plain, model)
    branches_only = build_classifier(4, 40, "flatten_conv_wide", dropout=0.0)
    copy_matching_weights(branches_only, model)
    dense = branches_only.get_layer("head_dense")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    x = rng.standard_normal((24, 40, 40, 40, 1)).astype(np.float32)  # all 24 alike at rate 0.5: p = 1e-7
    full, alone = embedding_model(plain)(x).numpy(), embedding_model(branches_only)(x).numpy()
    assert np.abs(full - alone).max(axis=1).min() > 1e-2
    np.testing.assert_allclose(embedding_model(model)(x).numpy(), full, atol=1e-5)
    trained = embedding_model(model)(x, training=True).numpy()
    as_full = np.abs(trained - full).max(axis=1) < 1e-4
    as_alone = np.abs(trained - alone).max(axis=1) < 1e-4
    assert (as_full ^ as_alone).all() and as_full.any() and as_alone.any()
    model.save(tmp_path / "drop.keras")
    assert keras.models.load_model(tmp_path / "drop.keras").get_layer("head_flatten_drop").rate == 0.5
    with pytest.raises(ValueError, match="flatten_drop needs a head with pose-free branches"):
        build_classifier(4, 40, "flatten", flatten_drop=0.5)


def test_at_rate_one_the_flatten_path_is_removed_in_training_and_at_inference(rng):
    """``--flatten-drop 1``: the embedding is that of the same network with the flatten path's Dense zeroed, in
    training and at inference alike (a rate-1 layer that passed its input at inference would give the user a
    function the run never trained), and that Dense gets no gradient and is frozen (no optimizer state, no
    warning at the start of training)."""
    from deepfinder_unsup.model.classifier import copy_matching_weights

    model = build_classifier(4, 40, "flatten_conv_wide", dropout=0.0, flatten_drop=1.0)
    for layer in model.layers:
        if layer.name in ("head_dense", "head_branch_dense", "head_wide_dense"):
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])
    branches_only = build_classifier(4, 40, "flatten_conv_wide", dropout=0.0)
    copy_matching_weights(branches_only, model)
    dense = branches_only.get_layer("head_dense")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    x = rng.standard_normal((6, 40, 40, 40, 1)).astype(np.float32)
    alone = embedding_model(branches_only)(x).numpy()
    with_dense = embedding_model(build_classifier(4, 40, "flatten_conv_wide", dropout=0.0))
    copy_matching_weights(with_dense, model)
    assert np.abs(with_dense(x).numpy() - alone).max() > 1e-2  # the flatten path carries something here
    for training in (False, True):
        np.testing.assert_allclose(embedding_model(model)(x, training=training).numpy(), alone, atol=1e-5)
    import tensorflow as tf

    kernel = model.get_layer("head_dense").kernel
    assert not model.get_layer("head_dense").trainable and not kernel.trainable
    with tf.GradientTape() as tape:
        tape.watch(kernel.value)
        loss = tf.reduce_sum(embedding_model(model)(x, training=True) ** 2)
    assert tape.gradient(loss, [kernel.value])[0] is None


def test_every_head_is_offered_by_the_cli():
    from deepfinder_unsup.cli.options import build_parsers
    from deepfinder_unsup.model.classifier import HEADS

    train = build_parsers()[1]["train"]
    assert set(next(a for a in train._actions if a.dest == "head").choices) == set(HEADS)


def test_a_file_that_is_not_a_model_gets_a_clear_error(tmp_path):
    (tmp_path / "fake.keras").write_text("hello")
    with pytest.raises(InputError, match="fake.keras: not a model file"):
        load_model(tmp_path / "fake.keras")


def test_balanced_sampler_is_balanced():
    labels = np.array([0] * 500 + [1] * 50 + [2] * 5 + [7] * 445)  # very unbalanced pool
    idx = balanced_indices(labels, 6000, np.random.default_rng(0))
    counts = np.array([(labels[idx] == c).sum() for c in (0, 1, 2, 7)])
    assert stats.chisquare(counts).pvalue > 0.01
    assert len(np.unique(idx[labels[idx] == 2])) == 5  # every member of the rare class is used


def test_short_training_lowers_the_loss_and_beats_chance(tmp_path):
    from deepfinder_unsup.io.dataset import SubtomoDataset
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import builtin_structure
    from deepfinder_unsup.train import TrainConfig, train

    structs = [builtin_structure(n) for n in ("ring", "dumbbell", "globule")]
    # 24^3 boxes: a third of the 40^3 run's time; validation accuracy 0.67-1.0 over three data seeds (1.0 at 40)
    cfg = fixed_config(snr=1.0, negative_class=False, box_size=24)
    vols, objl, names = simulate_dataset(structs, 24, cfg, seed=0, n_workers=1, progress=False)
    data = SubtomoDataset(vols[:60], objl[:60], 10.0, {"class_names": names})
    val = SubtomoDataset(vols[60:], objl[60:], 10.0, {"class_names": names})
    weights = shared_file("deepfinder/weights/net_weights_FINAL.h5")
    from deepfinder_unsup.io import write_dataset

    write_dataset(tmp_path / "monitor.h5", val.subtomograms, val.objl, 10.0)
    path = train(
        data,
        val,
        tmp_path,
        TrainConfig(
            head="flatten",
            epochs=4,
            steps_per_epoch=4,
            batch_size=16,
            learning_rate=3e-4,
            freeze_convs=4,  # DeepFinder's first four as they are: the step costs half as much, the rest still learns
            patience=10,
            deepfinder_weights=str(weights),
            monitor_data=str(tmp_path / "monitor.h5"),
            select_by="monitor_v_measure",
        ),
        verbose=0,
    )
    import csv

    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert all(0 <= float(r["monitor_v_measure"]) <= 1 for r in rows)
    assert min(losses[-2:]) < losses[0]
    card = read_card(path)
    assert card["validation"]["val_accuracy"] > 1 / 3 + 0.15  # chance is 1/3
    assert card["voxel_size"] == 10.0 and card["box_size"] == 24
    assert card["classes"] == {"1": "ring", "2": "dumbbell", "3": "globule"}
    for f in ("training_curves.png", "confusion_matrix.png", "confusion_matrix.json", "best.keras"):
        assert (tmp_path / f).exists()


def ring_and_globule():
    """8 simulated sub-tomograms each of two built-in shapes in 16^3 boxes: the smallest data set a training run
    takes (what the tests using it check does not depend on the box)."""
    from deepfinder_unsup.io.dataset import SubtomoDataset
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import builtin_structure

    structures = [builtin_structure("ring"), builtin_structure("globule")]
    config = fixed_config(negative_class=False, box_size=SMALL_BOX)
    vols, objl, names = simulate_dataset(structures, 8, config, seed=0, n_workers=1, progress=False)
    return SubtomoDataset(vols, objl, 10.0, {"class_names": names})


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"learning_rate": -1e-4}, "--learning-rate must be positive, got -0.0001"),  # climbed the loss
        ({"learning_rate": 0.0}, "--learning-rate must be positive"),
        ({"scale": 0.0, "loss": "cosface"}, "--scale must be positive, got 0.0"),  # every logit 0: learned nothing
        ({"margin": -0.2, "loss": "cosface"}, "--margin must be from 0 to below 1, got -0.2"),
        ({"margin": float("nan")}, "--margin must be from 0 to below 1"),
        ({"focal_gamma": -1.0}, "--focal-gamma must be 0 or more, got -1.0"),  # the right samples would pull more
        ({"warmup_steps": -3}, "--warmup-steps must be 0 or more, got -3"),
        ({"patience": -1}, "--patience must be 0 or more, got -1"),
        ({"max_minutes": -5.0}, "--max-minutes must be positive: -5.0"),  # ran a whole epoch
        ({"steps_per_epoch": 0}, "--steps-per-epoch must be at least 1"),
        ({"flatten_drop": 1.5, "head": "flatten_conv"}, "--flatten-drop must be from 0 to 1, got 1.5"),
        ({"flatten_drop": 0.5}, "--flatten-drop needs a head with pose-free branches (flatten_conv...), got --head "),
    ],
)
def test_training_settings_out_of_range_are_refused_before_any_file(tmp_path, setting, message):
    from deepfinder_unsup.train import TrainConfig, train

    data = ring_and_globule()
    cfg = TrainConfig(**{"head": "gap", "epochs": 1, "steps_per_epoch": 1, "batch_size": 8, **setting})
    with pytest.raises(InputError, match=f"^{re.escape(message)}"):
        train(data, data, tmp_path / "run", cfg, verbose=0)
    assert not (tmp_path / "run").exists()


def test_the_cli_refuses_training_settings_out_of_range(capsys):
    from deepfinder_unsup.cli import main

    base = ["train", "--train", "t.h5", "--val", "v.h5", "--out", "o"]
    for flag, value, message in [
        ("--learning-rate", "-1", "must be a positive number, got -1"),
        ("--scale", "0", "must be a positive number, got 0"),
        ("--margin", "-1", "must be a number >= 0, got -1"),
        ("--warmup-steps", "-3", "must be at least 0, got -3"),
        ("--patience", "-1", "must be at least 0, got -1"),
        ("--max-minutes", "-5", "must be a positive number, got -5"),
    ]:
        with pytest.raises(SystemExit):
            main([*base, flag, value])
        assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_training_resumes_where_it_stopped(tmp_path):
    from deepfinder_unsup.train import TrainConfig, train

    data = ring_and_globule()
    cfg = TrainConfig(head="gap", epochs=1, steps_per_epoch=1, batch_size=8, keep_epochs=True)
    train(data, data, tmp_path, cfg, verbose=0)
    cfg.epochs = 3
    train(data, data, tmp_path, cfg, resume=True, verbose=0)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 3
    # --keep-epochs: every epoch's model with its own card, numbered across the resume
    kept = sorted(tmp_path.glob("epoch_*.keras"))
    assert [p.name for p in kept] == ["epoch_001.keras", "epoch_002.keras", "epoch_003.keras"]
    cards = [read_card(p)["training"] for p in kept]
    assert [(c["samples_seen"], c["best_epoch"]) for c in cards] == [(8, 1), (16, 2), (24, 3)]
    assert all(0 <= read_card(p)["validation"]["val_accuracy"] <= 1 for p in kept)
    last, third = (keras.models.load_model(tmp_path / f, compile=False) for f in ("last.keras", "epoch_003.keras"))
    assert all(np.array_equal(a, b) for a, b in zip(last.get_weights(), third.get_weights(), strict=True))
    first = keras.models.load_model(kept[0], compile=False)
    assert not all(np.array_equal(a, b) for a, b in zip(first.get_weights(), third.get_weights(), strict=True))


def test_a_new_run_in_an_earlier_runs_folder_leaves_none_of_its_checkpoints(tmp_path):
    """``--overwrite`` (or the API) over a 2-epoch run: the new 1-epoch run's folder holds its own epoch only
    (the earlier epoch_002.keras sat beside it as if this run's), and its best.keras is its own."""
    from deepfinder_unsup.train import TrainConfig, train

    data = ring_and_globule()
    for name in ("best.keras", "last.keras", "epoch_001.keras", "epoch_002.keras"):  # the earlier run's, in short
        (tmp_path / name).write_text("the earlier run's")
    (tmp_path / "state.json").write_text('{"epoch": 2, "samples_seen": 16}')
    cfg = TrainConfig(head="gap", epochs=1, steps_per_epoch=1, batch_size=8, keep_epochs=True)
    train(data, data, tmp_path, cfg, verbose=0)
    assert [p.name for p in sorted(tmp_path.glob("epoch_*.keras"))] == ["epoch_001.keras"]
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 1
    best, first = (keras.models.load_model(tmp_path / f, compile=False) for f in ("best.keras", "epoch_001.keras"))
    assert all(np.array_equal(a, b) for a, b in zip(best.get_weights(), first.get_weights(), strict=True))


def test_frozen_leading_convolutions_keep_their_weights_and_load_trainable(tmp_path):
    """--freeze-convs 2: conv1-2 leave training bit for bit as they came from --init-model, conv3 and the head
    move; the written model loads with every layer trainable (adapt trains it all). No head given: the init
    model's, which the card records (what the next warm restart reads)."""
    from deepfinder_unsup.train import TrainConfig, train

    data = ring_and_globule()
    start = tmp_path / "start.keras"
    card = {"voxel_size": 10.0, "box_size": SMALL_BOX, "head": "gap"}
    save_model(build_classifier(2, SMALL_BOX, "gap"), start, card)
    cfg = TrainConfig(
        epochs=1, steps_per_epoch=2, batch_size=8, learning_rate=1e-3, init_model=str(start), freeze_convs=2
    )
    trained, _ = load_model(train(data, data, tmp_path / "run", cfg, verbose=0))
    before, _ = load_model(start)
    for name, frozen in (("encoder_conv1", True), ("encoder_conv2", True), ("encoder_conv3", False)):
        same = all(
            np.array_equal(a, b)
            for a, b in zip(before.get_layer(name).get_weights(), trained.get_layer(name).get_weights(), strict=True)
        )
        assert same == frozen, name
    assert all(layer.trainable for layer in trained.layers)
    written = read_card(tmp_path / "run" / "model.keras")
    assert written["training"]["config"]["freeze_convs"] == 2
    assert written["head"] == "gap" and written["training"]["config"]["flatten_drop"] == 0.0
    cfg.freeze_convs = 9
    with pytest.raises(InputError, match="freeze_convs = 9: the encoder has 8 convolutions"):
        train(data, data, tmp_path / "bad", cfg, verbose=0)


def test_the_card_counts_the_samples_the_kept_checkpoint_saw_not_the_run():
    """A run of 8 epochs whose best was epoch 4: the written model saw 4 epochs on top of its initial model's."""
    from deepfinder_unsup.train import samples_seen

    counts = samples_seen(4, 8, 4800, {"samples_seen_before": 638_208})
    assert counts == {
        "samples_seen": 19_200,
        "samples_seen_total": 657_408,
        "samples_seen_run": 38_400,
        "best_epoch": 4,
    }
    assert samples_seen(None, 3, 100, {})["samples_seen_total"] == 300  # no selection score: the last epoch


def test_a_warm_restart_keeps_the_earlier_models_head_unless_told(tmp_path):
    from deepfinder_unsup.train import head_of_model

    assert head_of_model(None) == "flatten"
    assert head_of_model("shrec21") == "flatten"
    assert head_of_model("general") == "flatten_conv_zoom"  # the shipped model since session 67
    save_model(
        build_classifier(3, 40, "gap"), tmp_path / "g.keras", {"voxel_size": 10.0, "box_size": 40, "head": "gap"}
    )
    assert head_of_model(str(tmp_path / "g.keras")) == "gap"


def test_a_warm_restart_keeps_a_removed_flatten_path_removed_unless_told(tmp_path, monkeypatch):
    """A model trained with --flatten-drop 1 has no flatten path; a warm restart of it without the option used to
    build the path back (its frozen Dense, RMS ~5, added to branches trained without it). A head or flatten_drop
    left None is now the init model's (its card), for the CLI and the API alike; a value given still wins."""
    from deepfinder_unsup import pipeline
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.train import (
        TrainConfig,
        build_training_model,
        flatten_drop_of_model,
        with_init_model_defaults,
    )

    alone = tmp_path / "alone.keras"
    card = {"voxel_size": 10.0, "box_size": 40, "head": "flatten_conv", "training": {"config": {"flatten_drop": 1.0}}}
    save_model(build_classifier(3, 40, "flatten_conv", flatten_drop=1.0), alone, card)
    assert flatten_drop_of_model(str(alone), "flatten_conv_zoom") == 1.0
    assert flatten_drop_of_model(str(alone), "flatten") == 0.0  # a head without the path: nothing to drop
    assert flatten_drop_of_model("general", "flatten_conv_zoom") == 1.0  # the shipped model since session 67
    assert flatten_drop_of_model("shrec21", "flatten_conv") == 0.0  # trained with the path (and before the option)
    assert flatten_drop_of_model(None, "flatten_conv") == 0.0

    def built(**given):
        """The model an API caller's TrainConfig builds from ``alone``: its head's flatten path's drop rate."""
        model, info = build_training_model(3, 40, TrainConfig(init_model=str(alone), **given))
        assert "head_branch_dense" in info["copied_layers"]  # the branches continue from the init model
        names = {layer.name for layer in model.layers}
        return model.get_layer("head_flatten_drop").rate if "head_flatten_drop" in names else None, names

    rate, names = built()
    assert rate == 1.0 and "head_branch_dense" in names  # the init model's head, its flatten path still removed
    assert built(flatten_drop=0.5)[0] == 0.5
    assert built(head="flatten_conv_wide")[0] == 1.0  # another head with the path: the card's drop still holds
    assert built(flatten_drop=0.0)[0] is None  # told to bring the path back

    configs = []
    monkeypatch.setattr(pipeline, "train_to_folder", lambda out, cfg, **kw: configs.append(cfg) or out)
    common = ["train", "--train", "t.h5", "--val", "v.h5", "--out", str(tmp_path / "run"), "--init-model", str(alone)]
    assert main(common) == 0
    assert main([*common, "--flatten-drop", "0.5"]) == 0
    resolved = [with_init_model_defaults(c) for c in configs]
    assert [(c.head, c.flatten_drop) for c in resolved] == [("flatten_conv", 1.0), ("flatten_conv", 0.5)]


def test_the_wall_clock_limit_stops_before_an_epoch_that_would_overrun():
    """--max-minutes is a batch job's wall time: the run stops when the next epoch (judged by the longest so far)
    would end past the deadline, not only once the deadline has passed."""
    from deepfinder_unsup.train import WallClockLimit

    now = [0.0]
    limit = WallClockLimit(10, clock=lambda: now[0])  # deadline at 600 s
    limit.set_model(build_encoder())  # any model: only its stop_training flag is used
    limit.model.stop_training = False
    ended = []
    for epoch, length in enumerate([200.0, 250.0, 100.0, 100.0]):
        limit.on_epoch_begin(epoch)
        now[0] += length
        limit.on_epoch_end(epoch)
        ended.append(limit.model.stop_training)
        if limit.model.stop_training:
            break
    # after 200 s: 200 + 200 <= 600 goes on; after 450 s: 450 + 250 > 600 stops, although 450 < 600
    assert ended == [False, True]
    assert WallClockLimit(None).deadline is None
