"""The margin losses and the cosine head against numpy references; weight transfer between models;
validation classes matched to training classes by name."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from deepfinder_unsup.io.dataset import SubtomoDataset  # noqa: E402
from deepfinder_unsup.model.classifier import (  # noqa: E402
    CosineClassifier,
    build_classifier,
    copy_leading_class_directions,
    copy_matching_weights,  # noqa: E402
    with_dtype_policy,
)
from deepfinder_unsup.model.losses import FocalCrossEntropy, MarginSoftmaxLoss, make_loss  # noqa: E402
from deepfinder_unsup.train import evaluate_classifier, leads_class_list, relabel_by_name  # noqa: E402


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("kind", ["cosface", "arcface"])
def test_margin_loss_matches_numpy(kind):
    rng = np.random.default_rng(0)
    cos = np.clip(rng.uniform(-1, 1, (6, 5)), -0.999, 0.999).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 6)]
    s, m = 16.0, 0.2
    if kind == "cosface":
        target = cos - m
    else:
        target = np.cos(np.arccos(cos) + m)
    logits = s * np.where(y > 0, target, cos)
    expected = -(y * _log_softmax(logits)).sum(axis=1).mean()
    got = float(MarginSoftmaxLoss(kind, s, m)(y, cos))
    assert got == pytest.approx(expected, rel=1e-4)
    # the margin makes the loss larger than plain normalised softmax: it asks for more separation
    assert got > float(MarginSoftmaxLoss(kind, s, 0.0)(y, cos))


@pytest.mark.parametrize("kind", ["ce", "cosface"])
def test_focal_loss_matches_numpy_and_weighs_the_unfitted_samples(kind):
    """--focal-gamma: each sample's cross-entropy times (1 - p_true) ** gamma, p_true from its own softmax (a
    numpy reference); so a sample already classified counts far less than one the network gets wrong."""
    rng = np.random.default_rng(4)
    n, k, gamma, s, m = 8, 5, 2.0, 16.0, 0.2
    y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    if kind == "ce":
        pred = rng.dirichlet(np.ones(k), n).astype(np.float32)
        log_p = np.log(pred)
    else:
        pred = np.clip(rng.uniform(-1, 1, (n, k)), -0.999, 0.999).astype(np.float32)
        log_p = _log_softmax(s * np.where(y > 0, pred - m, pred))
    ce = -(y * log_p).sum(axis=1)
    expected = ((1.0 - np.exp(-ce)) ** gamma * ce).mean()
    loss = make_loss(kind, s, m, focal_gamma=gamma)
    assert float(loss(y, pred)) == pytest.approx(expected, rel=1e-4)
    assert float(make_loss(kind, s, m)(y, pred)) == pytest.approx(ce.mean(), rel=1e-4)  # gamma 0: the plain loss
    if kind == "ce":
        right = np.array([[0.9, 0.05, 0.05]], np.float32)
        wrong = np.array([[0.1, 0.45, 0.45]], np.float32)
        y1 = np.array([[1.0, 0.0, 0.0]], np.float32)
        ratio_plain = float(make_loss("ce")(y1, wrong)) / float(make_loss("ce")(y1, right))
        ratio_focal = float(loss(y1, wrong)) / float(loss(y1, right))
        assert ratio_focal > 50 * ratio_plain  # (0.9 / 0.1) ** 2 = 81 times the weight
    again = type(loss).from_config(loss.get_config())
    assert again.focal_gamma == gamma
    with pytest.raises(ValueError, match="focal exponent must be 0 or more"):
        FocalCrossEntropy(-1.0)


def test_loss_names_and_round_trip():
    assert isinstance(make_loss("ce"), keras.losses.CategoricalCrossentropy)
    loss = make_loss("arcface", 10.0, 0.3)
    again = MarginSoftmaxLoss.from_config(loss.get_config())
    assert (again.kind, again.scale, again.margin) == ("arcface", 10.0, 0.3)
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("triplet")


def test_cosine_head_outputs_cosines():
    rng = np.random.default_rng(1)
    layer = CosineClassifier(4)
    x = rng.normal(size=(3, 8)).astype(np.float32)
    out = np.asarray(layer(x))
    w = np.asarray(layer.directions)
    ref = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0, keepdims=True))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert np.abs(out).max() <= 1.0 + 1e-6


def test_weights_copy_by_name_and_float32_copy_is_identical():
    src = build_classifier(5, output="cosine")
    dst = build_classifier(7, output="softmax")
    copied = copy_matching_weights(dst, src)
    assert "embedding" in copied and "encoder_conv1" in copied and "class_output" not in copied
    np.testing.assert_array_equal(
        dst.get_layer("embedding").get_weights()[0], src.get_layer("embedding").get_weights()[0]
    )
    x = np.random.default_rng(2).normal(size=(2, 40, 40, 40, 1)).astype(np.float32)
    same = with_dtype_policy(src, "float32")
    np.testing.assert_allclose(np.asarray(same(x)), np.asarray(src(x)), atol=1e-6)


def test_grown_class_list_keeps_the_earlier_directions_in_order():
    """A warm restart on more classes (the old list first) keeps each old class's direction in its column; a
    reordered or renamed list keeps none (column i would be another structure)."""
    src = build_classifier(4, output="cosine")
    dst = build_classifier(6, output="cosine")
    before = dst.get_layer("class_output").get_weights()[0].copy()
    assert copy_leading_class_directions(dst, src) == 4
    after = dst.get_layer("class_output").get_weights()[0]
    np.testing.assert_array_equal(after[:, :4], src.get_layer("class_output").get_weights()[0])
    np.testing.assert_array_equal(after[:, 4:], before[:, 4:])
    assert copy_leading_class_directions(src, dst) == 0  # fewer classes: nothing to keep
    assert copy_leading_class_directions(build_classifier(6, output="softmax"), src) == 0
    earlier = {"0": "negative", "1": "a", "2": "b", "10": "c"}  # sorted by label, not as text
    assert leads_class_list(earlier, ["negative", "a", "b", "c", "d"])
    assert not leads_class_list(earlier, ["negative", "b", "a", "c", "d"])
    assert not leads_class_list(earlier, ["negative", "a", "b"])
    assert not leads_class_list({}, ["negative"])


def test_warm_restart_copies_the_output_only_for_the_same_classes(tmp_path):
    """--init-model: the same class list keeps every output column, a grown one its leading columns, and another
    list of the same length none (its column i would be another structure)."""
    from deepfinder_unsup.model.card import save_model
    from deepfinder_unsup.train import TrainConfig, build_training_model

    src = build_classifier(3, output="cosine")
    card = {"voxel_size": 10.0, "box_size": 40, "classes": {"0": "negative", "1": "a", "2": "b"}}
    path = save_model(src, tmp_path / "src.keras", card)
    config = TrainConfig(loss="cosface", init_model=str(path))
    directions = src.get_layer("class_output").get_weights()[0]

    def output_of(names):
        model, info = build_training_model(len(names), 40, config, names)
        return model.get_layer("class_output").get_weights()[0], info

    same, info = output_of(["negative", "a", "b"])
    np.testing.assert_array_equal(same, directions)
    assert "class_output" in info["copied_layers"]
    grown, info = output_of(["negative", "a", "b", "c"])
    np.testing.assert_array_equal(grown[:, :3], directions)
    assert info["kept_class_directions"] == 3
    other, info = output_of(["negative", "x", "y"])
    assert "class_output" not in info["copied_layers"] and "kept_class_directions" not in info
    assert not np.allclose(other, directions)
    assert "embedding" in info["copied_layers"]  # the rest of the network still starts from the source


def test_dtype_copy_of_a_compiled_model_carries_no_optimizer(tmp_path):
    """A saved model must not carry the optimizer's moments (3x the file size: over the transfer limits)."""
    src = build_classifier(5, output="cosine")
    src.compile(optimizer="adam", loss="mse")
    src.optimizer.build(src.trainable_variables)  # Adam's two moments per weight, as after a training step
    copy = with_dtype_policy(src, "mixed_bfloat16")
    assert not copy.compiled and copy.get_layer("encoder_conv1").dtype_policy.name == "mixed_bfloat16"
    assert copy.get_layer("class_output").compute_dtype == "bfloat16"  # every layer, the output's too
    src.save(tmp_path / "compiled.keras")
    with_dtype_policy(src, "float32").save(tmp_path / "copy.keras")
    assert (tmp_path / "copy.keras").stat().st_size < 0.5 * (tmp_path / "compiled.keras").stat().st_size


def test_validation_clusters_at_the_number_of_validation_classes(tmp_path):
    """Trained on many classes, validated on two: k-means must use k = 2 (two tight groups give V = 1)."""
    rng = np.random.default_rng(3)
    model = build_classifier(6, box_size=8, output="cosine")
    a, b = rng.normal(size=(8, 8, 8)), rng.normal(size=(8, 8, 8))
    vols = np.stack([a] * 5 + [b] * 5).astype(np.float32) + rng.normal(scale=1e-3, size=(10, 8, 8, 8)).astype(
        np.float32
    )
    objl = [{"label": lab, "x": 0.0, "y": 0.0, "z": 0.0} for lab in [1] * 5 + [4] * 5]
    data = SubtomoDataset(vols, objl, 10.0, {"class_names": {1: "a", 4: "d"}})
    report = evaluate_classifier(model, data, np.arange(6), tmp_path)
    assert report["val_v_measure_kmeans"] == pytest.approx(1.0)


def test_validation_classes_are_matched_by_name():
    objl = [{"label": lab, "x": 0.0, "y": 0.0, "z": 0.0} for lab in (1, 2, 2)]
    data = SubtomoDataset(np.zeros((3, 4, 4, 4), np.float32), objl, 10.0, {"class_names": {1: "a", 2: "b"}})
    out = relabel_by_name(data, {0: "negative", 5: "b", 9: "a"})
    assert list(out.labels) == [9, 5, 5] and out.class_names == {9: "a", 5: "b"}
    from deepfinder_unsup.io.files import InputError

    with pytest.raises(InputError, match="'b' is not among the training classes"):
        relabel_by_name(data, {1: "a"})
