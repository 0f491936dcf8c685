"""Unsupervised adaptation: its objective against numpy, the collapse guard, and the command keeping the input
model unless the label-free score improves, with the adaptation recorded in the card."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deepfinder_unsup.adapt import (
    InfoMaxLoss,
    NeighbourAttractionLoss,
    collapsed,
    coral_distance,
    label_free_score,
    neighbour_targets,
    neighbourhood_overlap,
)
from deepfinder_unsup.cli import main
from deepfinder_unsup.embed import cpu_has_bf16

from .conftest import SMALL_BOX, two_kinds_of_picks


def test_infomax_objective_matches_numpy(rng):
    p = rng.dirichlet(np.ones(5), size=8).astype(np.float32)
    per_sample = -(p * np.log(p)).sum(axis=1)
    mean = p.mean(axis=0)
    want = per_sample.mean() + (mean * np.log(mean)).sum()
    assert float(InfoMaxLoss()(np.zeros_like(p), p)) == pytest.approx(want, rel=1e-5)
    # confident and diverse predictions score lower than uncertain ones
    confident = np.eye(5, dtype=np.float32)[np.arange(8) % 5] * 0.96 + 0.01
    uniform = np.full((8, 5), 0.2, np.float32)
    assert float(InfoMaxLoss()(confident, confident)) < float(InfoMaxLoss()(uniform, uniform))


def test_neighbour_targets_are_the_mean_of_the_nearest_others(rng):
    feats = rng.normal(size=(30, 4)) * rng.uniform(0.5, 3, size=(30, 1))  # lengths differ: cosine decides
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    targets = neighbour_targets(feats, k=3)
    for i in range(30):
        cos = unit @ unit[i]
        cos[i] = -np.inf  # never its own neighbour
        want = unit[np.argsort(-cos)[:3]].mean(axis=0)
        np.testing.assert_allclose(targets[i], want, atol=1e-6)
    assert neighbour_targets(feats[:2], k=5).shape == (2, 4)  # fewer picks than k: the others


def test_neighbourhood_overlap_counts_the_nearest_neighbours_both_features_share(rng):
    before = rng.normal(size=(50, 6)) * rng.uniform(0.5, 3, size=(50, 1))
    after = before + 0.7 * rng.normal(size=(50, 6))

    def nearest(f, i, k):
        unit = f / np.linalg.norm(f, axis=1, keepdims=True)
        cos = unit @ unit[i]
        cos[i] = -np.inf
        return set(np.argsort(-cos)[:k])

    want = np.mean([len(nearest(before, i, 5) & nearest(after, i, 5)) / 5 for i in range(50)])
    assert neighbourhood_overlap(before, after, k=5) == pytest.approx(want)
    assert 0.2 < want < 0.9  # the perturbation changed some neighbourhoods, not all
    assert neighbourhood_overlap(before, 4.0 * before, k=5) == 1.0  # lengths do not count: cosine


def test_tightened_groups_keep_their_neighbourhoods_and_reshuffled_features_do_not(rng):
    """What the guard's number tells apart: an adaptation that pulls each group together (what `neighbours`
    does to groups already apart) against one that lays the picks out anew (features handed to other picks)."""
    centres = rng.normal(size=(5, 16))
    groups = np.repeat(np.arange(5), 40)
    before = centres[groups] + 0.5 * rng.normal(size=(200, 16))
    group_means = np.stack([before[groups == g].mean(axis=0) for g in range(5)])
    tightened = before + 2.0 * group_means[groups]
    reshuffled = before[rng.permutation(200)]
    assert neighbourhood_overlap(before, tightened, k=30) > 0.8
    assert neighbourhood_overlap(before, reshuffled, k=30) < 0.3


def test_one_way_neighbours_weigh_less_than_mutual_ones():
    """Five picks on the unit circle at angles 0, 0.1, 0.25, 0.9, 1.0, k = 2: pick 3's neighbours are 4 (whose own
    nearest are 3 and 2: mutual) and 2 (whose own are 1 and 0: one-way). Checked against a loop over the
    definition, and pick 3's target pulled towards 4 more than the plain mean does."""
    angles = np.array([0.0, 0.1, 0.25, 0.9, 1.0])
    feats = np.c_[np.cos(angles), np.sin(angles)]
    unit = feats  # already unit length
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :2]
    is_nb = np.zeros((5, 5), bool)
    for i in range(5):
        is_nb[i, nearest[i]] = True
    weighted = neighbour_targets(feats, k=2, one_way_weight=0.1)
    for i in range(5):  # reference: a loop over the definition
        w = np.array([1.0 if is_nb[j, i] else 0.1 for j in nearest[i]])
        np.testing.assert_allclose(weighted[i], (w[:, None] * unit[nearest[i]]).sum(0) / w.sum(), atol=1e-6)
    # pick 3 (at 0.9): neighbours 4 (mutual) and 2 (one-way): pulled towards 4 more than the plain mean
    assert weighted[3] @ unit[4] > neighbour_targets(feats, k=2)[3] @ unit[4]


def test_neighbour_loss_matches_numpy_and_rewards_tight_spread_clusters(rng):
    z = rng.normal(size=(8, 5)).astype(np.float32)
    t = rng.normal(size=(8, 5)).astype(np.float32)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    others = ((u @ u.T).sum(axis=1) - 1) / 7
    want = (-(u * t).sum(axis=1) + 0.5 * others).mean()
    assert float(NeighbourAttractionLoss(dispersion=0.5)(t, 3 * z)) == pytest.approx(want, rel=1e-5)
    # two tight, opposite clusters whose picks sit on their neighbours' mean beat a random layout
    centres = np.eye(5, dtype=np.float32)[[0, 0, 0, 0, 1, 1, 1, 1]] * np.r_[1, 1, 1, 1, -1, -1, -1, -1][:, None]
    assert float(NeighbourAttractionLoss()(centres, centres)) < float(NeighbourAttractionLoss()(centres, z))


def test_neighbour_training_tightens_groups_whose_neighbours_agree():
    """The picks go in augmented (shifted, flipped) but with their own rows of targets: each group's picks end
    closer to each other, relative to the other group, than before (with the targets shuffled across picks the
    separation falls instead: checked when this test was written, seeds 0, 1, 11)."""
    keras = pytest.importorskip("keras")
    from deepfinder_unsup.adapt import features_of
    from deepfinder_unsup.adapt.methods import _fit_round

    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    r = np.sqrt(((np.mgrid[:8, :8, :8] - 3.5) ** 2).sum(axis=0))
    patterns = np.stack([np.exp(-(r**2) / 4), np.exp(-((r - 3) ** 2))]).astype(np.float32)  # a blob, a shell
    group = np.arange(48) % 2
    vols = patterns[group] + 0.3 * rng.normal(size=(48, 8, 8, 8)).astype(np.float32)
    # a linear embedding: spread from the start (at a collapsed start the dispersion has no gradient)
    network = keras.Sequential([keras.Input((8, 8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(32)])
    network.compile(keras.optimizers.Adam(1e-3), NeighbourAttractionLoss(), jit_compile=False)

    def separation(f):
        cos = f @ f.T
        same = group[:, None] == group[None, :]
        np.fill_diagonal(same, False)
        return cos[same].mean() - cos[group[:, None] != group[None, :]].mean()

    before = features_of(network, vols)
    assert np.mean(group[np.argsort(-(before @ before.T), axis=1)[:, 1:6]] == group[:, None]) > 0.8  # mostly pure
    for _ in range(3):
        _fit_round(network, vols, neighbour_targets(features_of(network, vols), 5), 10, 16, rng)
    assert separation(features_of(network, vols)) > separation(before) + 0.1


def test_tta_features_are_invariant_to_the_wedge_symmetric_turns_and_average_the_views(rng):
    """``adapt --tta``'s features: the normalised mean of the four views' unit embeddings, so a pick turned by
    180 degrees about x, y or z (index arithmetic here, not the package's flips) gets the same features; the
    single-view features of the same network change."""
    keras = pytest.importorskip("keras")
    from deepfinder_unsup.adapt import features_of

    keras.utils.set_random_seed(2)
    network = keras.Sequential([keras.Input((8, 8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(6)])
    vols = rng.normal(size=(5, 8, 8, 8)).astype(np.float32)
    turned = (2 * 4 - np.arange(8)) % 8  # index i -> 2c - i about the centre voxel c = 4

    def turn(v, axes):
        for axis in axes:
            v = np.take(v, turned, axis=axis + 1)
        return v

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    views = [vols] + [turn(vols, axes) for axes in ((0, 1), (0, 2), (1, 2))]
    want = unit(sum(unit(np.asarray(network(v[..., None]))) for v in views))
    np.testing.assert_allclose(features_of(network, vols, tta=True), want, atol=1e-5)
    for axes in ((0, 1), (0, 2), (1, 2)):
        np.testing.assert_allclose(features_of(network, turn(vols, axes), tta=True), want, atol=1e-5)
    assert np.abs(features_of(network, turn(vols, (0, 1))) - features_of(network, vols)).max() > 1e-2


def test_collapse_guard(rng):
    feats = rng.standard_normal((100, 8))
    spread = float(feats.std(axis=0).sum())
    assert collapsed(feats, np.arange(100) % 4, spread) is None
    assert "holds 95%" in collapsed(feats, np.r_[np.zeros(95, int), np.ones(5, int)], spread)
    assert "spread fell" in collapsed(0.1 * feats, np.arange(100) % 4, spread)
    score, labels = label_free_score(np.r_[rng.normal(0, 0.05, (20, 3)) + 5, rng.normal(0, 0.05, (20, 3))], 2)
    assert score > 0.9 and sorted(np.bincount(labels)) == [20, 20]


def test_adapt_command_records_what_it_did(tmp_path, small_model):
    from deepfinder_unsup.io import write_dataset
    from deepfinder_unsup.io.objl import new_object
    from deepfinder_unsup.model.card import load_model, read_card

    data = tmp_path / "dataset.h5"
    write_dataset(data, two_kinds_of_picks(36), [new_object(1, 8.0, 8.0, 8.0) for _ in range(36)], 10.0)
    out = tmp_path / "adapted.keras"
    cmd = ["adapt", "--dataset", str(data), "--model", str(small_model), "--out", str(out), "--rounds", "1"]
    cmd += ["--steps", "3"]
    assert main([*cmd, "--batch-size", "4"]) == 0
    card = read_card(out)["adaptation"]
    assert card["method"] == "neighbours" and card["n_picks"] == 36 and card["kept"] in ("adapted", "input")
    assert card["steps"] == 3 and card["batch_size"] == 4
    assert card["tta"] is True  # the default: features of the four wedge-symmetric views
    assert card["neighbours"] == 30  # AaD's K, the default (adapt.NEIGHBOURS)
    assert card["score_after"] >= card["score_before"] and len(card["rounds"]) == 1
    assert 0 < card["rounds"][0]["neighbourhood_kept"] <= 1  # of the input's 30 nearest, the share still nearest
    assert 0 < card["neighbourhood_between_views"] <= 1  # the input model's, its one view against its four
    assert 0 <= card["stability_before"] <= 1 and 0 <= card["stability_after"] <= 1
    if card["kept"] == "adapted":  # both label-free scores said better
        assert card["score_after"] > card["score_before"]
        assert card["stability_after"] >= card["stability_before"] - 0.02
    assert card["source"].endswith("dataset.h5") and card["input_model"].endswith(".keras")
    if card["kept"] == "input":  # never worse: the input model's weights, unchanged
        a, _ = load_model(out)
        b, _ = load_model(small_model)
        assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert main(cmd) == 1  # an existing model file is not replaced without --overwrite
    assert card["noise"] == 0.0 and card["one_way_weight"] == 1.0
    more = ["--neighbours", "3", "--noise", "0.5", "--one-way-weight", "0.1"]
    assert main([*cmd, "--no-tta", "--overwrite", "--steps", "1", "--batch-size", "4", *more]) == 0
    card = read_card(out)["adaptation"]
    assert card["tta"] is False and card["neighbours"] == 3 and card["noise"] == 0.5
    assert card["one_way_weight"] == 0.1


def test_embed_follows_the_views_the_model_was_adapted_on(tmp_path, small_model):
    """A model adapted on one view or on the mean of the four wedge-symmetric views is embedded the same way
    without being told (API and CLI, recorded in the file); --no-tta / tta=False still overrides; a model with no
    adaptation record gets the four views (the default since session 37)."""
    from deepfinder_unsup.embed import Embedder, resolve_model_path
    from deepfinder_unsup.io import read_embeddings, write_dataset
    from deepfinder_unsup.io.objl import new_object
    from deepfinder_unsup.model.card import load_model, save_model

    classifier, card = load_model(small_model)
    adapted, one_view = tmp_path / "adapted.keras", tmp_path / "adapted_one_view.keras"
    save_model(classifier, adapted, {**card, "adaptation": {"method": "neighbours", "tta": True}})
    save_model(classifier, one_view, {**card, "adaptation": {"method": "neighbours", "tta": False}})
    vols = np.random.default_rng(3).standard_normal((5, SMALL_BOX, SMALL_BOX, SMALL_BOX)).astype(np.float32)
    vols[:, 5:9, 7:12, 6:8] += 2.0  # off-centre and asymmetric: each view differs
    views = Embedder(adapted, precision="float32", tta=True).transform(vols)
    plain = Embedder(adapted, precision="float32", tta=False).transform(vols)
    assert np.abs(views - plain).max() > 1e-3  # the two ways differ: the check below can tell them apart
    followed = Embedder(adapted, precision="float32").fit()
    assert followed.tta_ is True
    np.testing.assert_allclose(followed.transform(vols), views, atol=1e-6)
    assert Embedder(one_view, precision="float32").fit().tta_ is False
    assert Embedder(small_model, precision="float32").fit().tta_ is True  # no adaptation record
    assert Embedder(resolve_model_path(None), precision="float32").fit().tta_ is True  # the shipped model: none
    data = tmp_path / "d.h5"
    write_dataset(data, vols, [new_object(1, 8.0, 8.0, 8.0) for _ in range(5)], 10.0)
    for model, flags, want in ((adapted, [], True), (adapted, ["--no-tta"], False), (one_view, [], False)):
        out = tmp_path / f"e{model.stem}{len(flags)}.h5"
        cmd = ["embed", "--dataset", str(data), "--model", str(model), "--precision", "float32", "--out", str(out)]
        assert main([*cmd, *flags]) == 0
        emb, _, attrs = read_embeddings(out)
        assert bool(attrs["tta"]) is want
        np.testing.assert_allclose(emb, views if want else plain, atol=1e-5)


def test_coral_distance_matches_numpy_and_ignores_scale(rng):
    a, b = rng.normal(size=(24, 6)), rng.normal(loc=0.5, size=(30, 6))

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    ua, ub = unit(a), unit(b)
    want = ((ua.mean(0) - ub.mean(0)) ** 2).sum() + ((np.cov(ua.T) - np.cov(ub.T)) ** 2).sum()
    assert float(coral_distance(a, b)) == pytest.approx(want, rel=1e-4)
    assert float(coral_distance(a, 3.0 * a)) == pytest.approx(0.0, abs=1e-6)  # on the sphere: length is not a feature


def test_coral_training_brings_the_two_batches_together():
    """Only the alignment loss pulls: after training, simulated and user embeddings are closer than before."""
    keras = pytest.importorskip("keras")
    from deepfinder_unsup.adapt.methods import _aligned_model
    from deepfinder_unsup.model.classifier import CosineClassifier, build_classifier, embedding_model

    rng = np.random.default_rng(7)
    network = embedding_model(build_classifier(2, box_size=8, output="cosine"))
    sim = rng.normal(size=(64, 8, 8, 8, 1)).astype(np.float32)
    user = (rng.normal(size=(64, 8, 8, 8, 1)) * 0.5 + np.linspace(-1, 1, 8)[None, :, None, None, None]).astype(
        np.float32
    )
    before = float(coral_distance(network(sim), network(user)))
    model = _aligned_model(network, CosineClassifier(2, name="adapt_head"), 8)
    model.compile(keras.optimizers.Adam(1e-3), lambda y, p: 0.0 * keras.ops.sum(p), jit_compile=False)
    model.fit((sim, user), np.zeros((64, 2), np.float32), batch_size=32, epochs=15, verbose=0)
    after = float(coral_distance(network(sim), network(user)))
    assert after < 0.3 * before


@pytest.mark.parametrize("method", ["like", "coral"])
def test_adapt_on_matched_simulation_records_the_estimate(tmp_path, method, quick_acquisition_estimate, small_model):
    from deepfinder_unsup.model.card import read_card

    data, config = tmp_path / "sim", tmp_path / "small_box.json"
    config.write_text(f'{{"box_size": {SMALL_BOX}}}')
    args = ["simulate", "--structures", "builtin:ring", "builtin:barrel", "--per-class", "8", "--workers", "1"]
    assert main([*args, "--config", str(config), "--out", str(data), "--seed", "6"]) == 0
    out = tmp_path / "adapted.keras"
    cmd = ["adapt", "--dataset", str(data / "dataset.h5"), "--model", str(small_model), "--out", str(out)]
    cmd += ["--method", method, "--k", "3"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        more = ["--rounds", "1", "--steps", "2", "--batch-size", "4"]
        assert main([*cmd, "--structures", "builtin:globule", "builtin:ring", *more]) == 0
    assert not [str(w.message) for w in caught if "keras" in w.filename and w.category is UserWarning]
    card = read_card(out)["adaptation"]
    assert card["method"] == method and card["n_picks"] == 24 and len(card["rounds"]) == 1
    assert {"tilt_min", "tilt_max"} <= set(card["estimate"])  # what was matched is on record


@pytest.mark.parametrize("method", ["pseudolabel", "neighbours", "infomax"])
def test_unguarded_adapt_writes_the_candidate_and_says_what_the_guard_thought(tmp_path, method, small_model):
    """... and Keras has nothing to warn about (the CLI shows every warning to the user: it showed one about
    the input's structure at each call and one about shuffling a generator)."""
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.model.card import load_model, read_card

    vols = two_kinds_of_picks(30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = adapt(small_model, vols, tmp_path / "a.keras", method, 1, 2, 4, k=3, guard=False)
    keras_warnings = [str(w.message) for w in caught if "keras" in w.filename and w.category is UserWarning]
    assert not keras_warnings, keras_warnings
    assert report.kept == "adapted" and isinstance(report.guard_passed, bool)
    card = read_card(tmp_path / "a.keras")["adaptation"]
    assert card["guard_passed"] == report.guard_passed and card["method"] == method
    assert card["neighbours"] == (min(30, len(vols) - 1) if method == "neighbours" else 0)  # AaD's K, where used
    written, _ = load_model(tmp_path / "a.keras")
    given, _ = load_model(small_model)
    assert not all(np.array_equal(a, b) for a, b in zip(written.get_weights(), given.get_weights()))


def test_frozen_convolutions_keep_their_weights_while_the_rest_adapt(tmp_path, small_model):
    """``freeze_convs`` N: the encoder's first N convolutions are written as they came, the next one moves; the
    card says N; a count beyond the encoder's 8 is refused before any embedding."""
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.io.files import InputError
    from deepfinder_unsup.model.card import load_model, read_card

    vols = two_kinds_of_picks(24)  # two kinds of pick, so the neighbours' pull has something to do
    with pytest.raises(InputError, match="freeze_convs = 9"):
        adapt(small_model, vols, tmp_path / "x.keras", "neighbours", 1, 1, k=2, freeze_convs=9)
    adapt(small_model, vols, tmp_path / "a.keras", "neighbours", 1, 3, 4, k=2, guard=False, freeze_convs=2)
    assert read_card(tmp_path / "a.keras")["adaptation"]["freeze_convs"] == 2
    written, _ = load_model(tmp_path / "a.keras")
    given, _ = load_model(small_model)
    convs = sorted(layer.name for layer in given.layers if layer.name.startswith("encoder_conv"))
    moved = [
        not all(
            np.array_equal(a, b) for a, b in zip(written.get_layer(n).get_weights(), given.get_layer(n).get_weights())
        )
        for n in convs[:3]
    ]
    assert moved == [False, False, True], dict(zip(convs, moved))


def test_a_neighbourhood_as_large_as_the_picks_is_refused_naming_the_value(tmp_path, rng):
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.io.files import InputError

    vols = rng.normal(size=(24, 40, 40, 40)).astype(np.float32)
    for bad in (0, 24):
        with pytest.raises(InputError, match=f"neighbours = {bad}"):
            adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=2, neighbours=bad)
    assert not (tmp_path / "a.keras").exists()


def test_phase_randomised_noise_keeps_the_spectrum_and_the_wedge_but_not_the_structure(rng):
    from deepfinder_unsup.volume import phase_randomised

    kz, ky, kx = np.meshgrid(*(np.fft.fftfreq(32),) * 2, np.fft.rfftfreq(32), indexing="ij")
    wedge = np.abs(kz) > 1.2 * np.abs(kx)  # a missing wedge about y (beam z), as a microscope leaves it
    spectrum = np.fft.rfftn(rng.normal(size=(32, 32, 32))) / (1.0 + 20 * np.sqrt(kz**2 + ky**2 + kx**2))
    volume = np.fft.irfftn(np.where(wedge, 0, spectrum), s=(32, 32, 32), axes=(0, 1, 2))  # coloured, wedged
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy 2 deprecated its irfftn(s=...) without axes
        noise = phase_randomised(volume, rng)
    np.testing.assert_allclose(np.abs(np.fft.rfftn(noise)), np.abs(np.fft.rfftn(volume)), atol=1e-4)
    assert np.abs(np.fft.rfftn(noise))[wedge].max() < 1e-4  # the wedge stays empty
    assert abs(np.corrcoef(noise.ravel(), volume.ravel())[0, 1]) < 0.05  # the structure is gone
    assert not np.allclose(noise, phase_randomised(volume, rng))  # a fresh draw each time


def test_own_spectrum_noise_lowers_the_snr_by_the_drawn_amount(rng):
    from deepfinder_unsup.adapt import with_own_spectrum_noise
    from deepfinder_unsup.volume import normalise

    batch = normalise(rng.normal(size=(40, 16, 16, 16)))
    pool = normalise(rng.normal(size=(10, 16, 16, 16)))
    np.testing.assert_allclose(with_own_spectrum_noise(batch, pool, rng, 0.0), batch, atol=1e-5)
    noisy = with_own_spectrum_noise(batch, pool, rng, 1.0)
    np.testing.assert_allclose(noisy.std(axis=(1, 2, 3)), 1.0, atol=1e-4)  # renormalised, as extract does
    corr = np.array([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(batch, noisy)])
    # a ~ U(0, 1) of unit-variance noise: correlation 1 / sqrt(1 + a^2), between 0.707 and 1, mean about 0.88
    assert corr.min() > 0.69 and corr.max() <= 1.0 and 0.84 < corr.mean() < 0.92


def test_noise_dispersion_and_weight_outside_their_ranges_are_refused_naming_the_value(tmp_path, rng):
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.io.files import InputError

    vols = rng.normal(size=(24, 40, 40, 40)).astype(np.float32)
    with pytest.raises(InputError, match="noise = -0.5"):
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=2, noise=-0.5)
    with pytest.raises(InputError, match="dispersion = -1"):
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=2, dispersion=-1.0)
    with pytest.raises(InputError, match="one_way_weight = 0.0"):
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=2, one_way_weight=0.0)
    with pytest.raises(InputError, match="batch_size = 0"):
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, 0, k=2)
    with pytest.raises(InputError, match="augmentation 'rotate'"):
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=2, augmentation="rotate")
    with pytest.raises(InputError, match="k = 24: must be at least 2 and below the 24 picks"):  # was k-means' own
        adapt(resolve_model_path(None), vols, tmp_path / "a.keras", "neighbours", 1, 1, k=24)  # error, internal
    assert not (tmp_path / "a.keras").exists()


@pytest.mark.skipif(
    not cpu_has_bf16(),
    reason="bf16 is emulated on this processor (no AVX-512 BF16 / AMX): this adaptation took over 12 minutes on an "
    "AVX2-only CPU (session 36); it runs where bf16 is native",
)
def test_bfloat16_adaptation_trains_but_writes_a_float32_model(tmp_path, small_model):
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.model.card import load_model, read_card

    vols = two_kinds_of_picks(20)
    out = tmp_path / "a.keras"
    seen = []
    report = adapt(
        small_model,
        vols,
        out,
        "neighbours",
        2,
        2,
        4,
        k=3,
        guard=False,
        precision="bfloat16",
        on_round=lambda r, f: seen.append((r, f)),
    )
    assert report.precision == read_card(out)["adaptation"]["precision"] == "bfloat16"
    assert [r for r, _ in seen] == [1, 2] and all(np.allclose(np.linalg.norm(f, axis=1), 1) for _, f in seen)
    assert seen[0][1].shape == (len(vols), 32)
    written, _ = load_model(out)
    given, _ = load_model(small_model)
    assert {layer.dtype_policy.name for layer in written.layers} == {"float32"}
    assert {w.dtype for w in written.get_weights()} == {np.dtype("float32")}
    assert not all(np.array_equal(a, b) for a, b in zip(written.get_weights(), given.get_weights()))
    with pytest.raises(Exception, match="float32 or bfloat16"):
        adapt(small_model, vols, tmp_path / "b.keras", precision="int8")


def test_silhouette_over_k_prefers_separated_groups_at_every_resolution(rng):
    from deepfinder_unsup.adapt import silhouette_over_k
    from deepfinder_unsup.cluster import normalise_features

    centres = normalise_features(rng.normal(size=(6, 8)))
    blobs = normalise_features(centres[np.arange(120) % 6] + 0.05 * rng.normal(size=(120, 8)))
    cloud = normalise_features(rng.normal(size=(120, 8)))
    assert silhouette_over_k(blobs, range(2, 9)) > silhouette_over_k(cloud, range(2, 9)) + 0.2


@pytest.mark.parametrize("between_views, warned", [(0.9, True), (0.55, False)])
def test_the_guard_keeps_the_best_round_whose_partition_holds(
    tmp_path, monkeypatch, caplog, between_views, warned, small_model
):
    """Rounds scoring silhouette 0.2, 0.3, 0.4 with stability 0.95, 0.95, 0.5 (input: 0.1, 0.9): the third
    breaks the partition, so the guard keeps the second, not the input (the rule before session 15 took the
    best silhouette, found its stability broken and threw the passing second round away). The kept round had
    lost over half the input's neighbourhoods: recorded, and warned about when the input's own neighbourhoods
    moved much less between one view and four (both scores rose for infomax on a design set while its V fell
    0.11, session 27), not when they moved about as much (the default on the crowded domain, session 28)."""
    import logging

    import deepfinder_unsup.adapt.run as adapt_module  # where adapt() looks its scores up

    scores, stabilities = iter([0.1, 0.2, 0.3, 0.4]), iter([0.9, 0.95, 0.95, 0.5])
    monkeypatch.setattr(adapt_module, "label_free_score", lambda f, k, seed: (next(scores), np.arange(len(f)) % k))
    monkeypatch.setattr(adapt_module, "stability", lambda f, k, seed: next(stabilities))
    monkeypatch.setattr(adapt_module, "silhouette_over_k", lambda f, ks, seed: 0.0)  # (it calls label_free_score)
    overlaps = iter([between_views, 0.8, 0.45, 0.3])  # the input's between its views first, then each round's
    monkeypatch.setattr(adapt_module, "neighbourhood_overlap", lambda a, b, k: next(overlaps))
    vols = two_kinds_of_picks(30, seed=5)
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        report = adapt_module.adapt(small_model, vols, tmp_path / "a.keras", "neighbours", 3, 1, 4, k=3, tta=False)
    assert [r["stability"] for r in report.rounds] == [0.95, 0.95, 0.5]
    assert report.kept == "adapted" and report.score_after == 0.3 and report.stability_after == 0.95
    assert report.guard_passed
    assert [r["neighbourhood_kept"] for r in report.rounds] == [0.8, 0.45, 0.3]
    assert report.neighbourhood_kept == 0.45  # the kept round's, not the last one's
    assert report.neighbourhood_between_views == between_views
    warning = f"keep 45% of the input model's 29 nearest neighbours of each pick, against {between_views:.0%}"
    assert (warning in caplog.text) is warned


def test_anchor_structures_are_the_models_classes_made_by_code():
    from deepfinder_unsup.adapt import anchor_structures
    from deepfinder_unsup.io.files import InputError

    classes = {"0": "negative", "1": "proc0000000", "2": "proc0000001", "3": "proc0000000@membrane", "4": "1bxn"}
    assert anchor_structures(classes) == ["procedural:2:0"]
    with pytest.raises(InputError, match="--structures"):
        anchor_structures({"0": "negative", "1": "1bxn", "2": "proc0000005"})  # seeds must start at 0


def test_anchor_targets_are_the_models_own_rows_found_by_name(monkeypatch, rng, quick_acquisition_estimate):
    """The simulator numbers its classes 0 (negative), 1, ...; the model may order the same names otherwise: each
    simulated sub-tomogram's target must be the model's row of its name, and a name the model lacks is refused."""
    from deepfinder_unsup.adapt import simulated
    from deepfinder_unsup.io.files import InputError

    monkeypatch.setattr(simulated, "ANCHOR_POOL", 32)
    card = {"box_size": 40, "voxel_size": 10.0, "classes": {"0": "ring", "1": "barrel", "2": "negative"}}
    vols = rng.normal(size=(12, 40, 40, 40)).astype(np.float32)
    pool = simulated.anchor_pool(vols, card, ["builtin:barrel"], seed=1)
    rows = pool.targets.argmax(axis=1)
    assert pool.volumes.shape == (32, 40, 40, 40) and pool.targets.shape == (32, 3)
    assert set(rows) <= {1, 2} and 1 in rows  # barrel and negative, never the ring's row 0
    np.testing.assert_allclose(pool.volumes.std(axis=(1, 2, 3)), 1.0, rtol=1e-3)  # normalised as the picks are
    with pytest.raises(InputError, match="no class globule"):
        simulated.anchor_pool(vols, card, ["builtin:globule"], seed=1)


@pytest.mark.parametrize("method", ["anchored", "dann"])
def test_simulation_held_adaptation_trains_the_network_but_keeps_the_class_directions(
    tmp_path, monkeypatch, method, quick_acquisition_estimate, small_model
):
    from deepfinder_unsup.adapt import adapt, simulated
    from deepfinder_unsup.model.card import load_model, read_card
    from deepfinder_unsup.model.classifier import OUTPUT_LAYER
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import builtin_structure

    monkeypatch.setattr(simulated, "ANCHOR_POOL", 32)
    structs = [builtin_structure("ring"), builtin_structure("barrel")]
    config = fixed_config(box_size=SMALL_BOX)
    vols, _, _ = simulate_dataset(structs, 10, config, seed=3, n_workers=1, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = adapt(small_model, vols, tmp_path / "a.keras", method, 1, 2, 4, k=3, guard=False, tta=False)
    assert not [str(w.message) for w in caught if "keras" in w.filename and w.category is UserWarning]
    card = read_card(tmp_path / "a.keras")["adaptation"]
    assert card["method"] == method
    if method == "anchored":
        assert card["anchor_weight"] == 1.0 and card["neighbours"] == len(vols) - 1 and card["domain_weight"] == 0
    else:  # no neighbours' pull: the domain classifier's loss instead
        assert card["domain_weight"] == 1.0 and card["neighbours"] == 0 and card["anchor_weight"] == 0
    assert {"tilt_min", "tilt_max"} <= set(card["estimate"]) and report.kept == "adapted"
    written, _ = load_model(tmp_path / "a.keras")
    given, _ = load_model(small_model)
    for a, b in zip(written.layers, given.layers):
        same = all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
        assert same == (a.name == OUTPUT_LAYER or a.name.startswith("binding") or not a.get_weights()), a.name


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient_by_its_strength(rng):
    """One SGD step through the domain classifier (its own weights fixed) moves the layer before it by -strength
    times what the same step moves it without reversal (strength -1 is the plain gradient)."""
    keras = pytest.importorskip("keras")
    from deepfinder_unsup.adapt import DomainClassifier, ReversalSchedule

    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = (rng.random((16, 1)) < 0.5).astype(np.float32)
    critic = DomainClassifier(units=8)
    critic(x)
    critic_weights = critic.get_weights()
    for layer in [*critic.hidden, critic.logit]:
        layer.trainable = False

    def step(strength):
        before = keras.layers.Dense(6, use_bias=False, kernel_initializer="identity")
        inputs = keras.Input((6,))
        model = keras.Model(inputs, critic(before(inputs)))
        critic.set_weights(critic_weights)
        critic.strength.assign(strength)
        plain = model.predict(x, verbose=0)
        model.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True))
        model.train_on_batch(x, y)
        return plain, before.get_weights()[0] - np.eye(6)

    out_plain, moved_plain = step(-1.0)
    out_reversed, moved_reversed = step(0.7)
    _, moved_none = step(0.0)
    np.testing.assert_allclose(out_reversed, out_plain, atol=1e-5)  # forward: the identity, whatever the strength
    assert np.abs(moved_plain).max() > 1e-4
    np.testing.assert_allclose(moved_reversed, -0.7 * moved_plain, rtol=1e-3, atol=1e-7)
    assert np.abs(moved_none).max() == 0.0  # strength 0: the network before it learns nothing

    schedule = ReversalSchedule(critic, total_steps=10)
    strengths = []
    for batch in range(10):
        schedule.on_train_batch_begin(batch)
        strengths.append(float(keras.ops.convert_to_numpy(critic.strength)))
    assert strengths[0] == 0.0 and np.all(np.diff(strengths) > 0)
    assert strengths[-1] == pytest.approx(2 / (1 + np.exp(-9.0)) - 1, abs=1e-6)  # DANN's 2 / (1 + e^-10p) - 1


def test_domain_adversarial_training_makes_two_alignable_domains_indistinguishable():
    """Two Gaussians apart along one axis, a linear 'network' to 4-D features trained only through the reversed
    domain loss on DANN's schedule: a fresh logistic regression tells the domains apart from the features clearly
    better than chance before, and near chance after (the network learns to drop the shifted axis)."""
    keras = pytest.importorskip("keras")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from deepfinder_unsup.adapt import DomainClassifier, ReversalSchedule

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(7)
    sim = rng.normal(size=(256, 6)).astype(np.float32)
    user = (rng.normal(size=(256, 6)) + np.array([1.5, 0, 0, 0, 0, 0])).astype(np.float32)
    network = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])

    def domain_probe() -> float:
        f = np.concatenate([network.predict(sim, verbose=0), network.predict(user, verbose=0)])
        f /= np.linalg.norm(f, axis=1, keepdims=True)
        domain = np.r_[np.zeros(len(sim)), np.ones(len(user))]
        return float(cross_val_score(LogisticRegression(max_iter=2000), f, domain, cv=4).mean())

    before = domain_probe()
    critic = DomainClassifier(units=16)
    a, b = keras.Input((6,)), keras.Input((6,))
    model = keras.Model([a, b], [critic(network(a)), critic(network(b))])
    binary = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-2), [binary, binary], jit_compile=False)
    domains = (np.zeros((256, 1)), np.ones((256, 1)))
    schedule = ReversalSchedule(critic, 30 * 8)
    model.fit((sim, user), domains, batch_size=32, epochs=30, verbose=0, callbacks=[schedule])
    after = domain_probe()
    assert before > 0.65 and after < 0.58, (before, after)


def test_view_augmentation_draws_each_of_the_four_wedge_views_equally_often(rng):
    """``views``: every copy is exactly one of its pick's four wedge-symmetric views, each drawn about a quarter of
    the time (a bug drawing only the three turns, or always the same, fails)."""
    from deepfinder_unsup.adapt import any_wedge_view
    from deepfinder_unsup.volume import wedge_symmetric_views

    pick = rng.normal(size=(1, 9, 9, 9)).astype(np.float32)
    views = wedge_symmetric_views(pick)
    copies = any_wedge_view(np.repeat(pick, 4000, axis=0), rng)
    which = np.array([[np.array_equal(c, v[0]) for v in views] for c in copies])
    assert (which.sum(axis=1) == 1).all()
    counts = which.sum(axis=0)
    assert (np.abs(counts - 1000) < 4 * np.sqrt(4000 * 0.25 * 0.75)).all(), counts  # binomial, 4 sigma
