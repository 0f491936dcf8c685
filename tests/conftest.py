"""Shared fixtures: the ../shared data (skipped, naming the file, only when absent) and small generated data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ../shared beside the repository; DEEPFINDER_UNSUP_SHARED points elsewhere (mutmut runs the tests in a copy)
SHARED = Path(os.environ.get("DEEPFINDER_UNSUP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def shared_file(relative: str) -> Path:
    """A file of ../shared, or skip the test naming it when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"../shared/{relative} is not available")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def gaussian_blob_tomogram(shape_zyx, centers_xyz, sigma_vox, voxel_size):
    """A tomogram of Gaussian blobs (amplitude 1) at given voxel centres (x, y, z)."""
    z, y, x = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape_zyx), indexing="ij")
    vol = np.zeros(shape_zyx, np.float32)
    for cx, cy, cz in centers_xyz:
        vol += np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * sigma_vox**2))
    return vol


@pytest.fixture(autouse=True)
def _quick_maps_under_mutation(monkeypatch):
    """Under mutation testing (mutmut sets MUTANT_UNDER_TEST) the report's t-SNE, which no mutated module holds,
    is replaced by a PCA projection: the clustering tests then take seconds, not tens of seconds, per mutant.
    The normal suite always runs the real t-SNE."""
    if not os.environ.get("MUTANT_UNDER_TEST"):
        return
    from sklearn.decomposition import PCA

    from deepfinder_unsup import report

    monkeypatch.setattr(report, "tsne_map", lambda emb, seed=0: PCA(2, random_state=seed).fit_transform(emb))


@pytest.fixture
def quick_acquisition_estimate(monkeypatch):
    """For tests of what adapt does with an estimate, not of the estimate (tests/test_like.py): the low-pass
    synthesis simulates 4 boxes per candidate instead of 32, the same code path at an eighth of the cost."""
    from deepfinder_unsup.simulate import like

    monkeypatch.setattr(like, "SYNTHESIS_BOXES", 4)


SMALL_BOX = 16  # the small model's box: (16 / 40)^3, a fifteenth of the shipped model's voxels


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A model file of the shipped kind (DeepFinder's encoder, the flatten + convolution head, cosine class and
    binding outputs, classes made by code, a card) at a 16^3 box, for tests of what adapt and embed do with any
    model, at a fifteenth of the shipped 40^3 model's arithmetic. Every weight whose shape does not depend on
    the box (the convolutions, the embedding layer) is the shipped model's, the rest drawn at random; what the
    shipped model knows is tested with the shipped model (test_pretrained.py, test_cli.py)."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model, save_model
    from deepfinder_unsup.model.classifier import build_classifier

    keras.utils.set_random_seed(0)
    model = build_classifier(3, box_size=SMALL_BOX, head="flatten_conv", output="cosine", binding_states=True)
    shipped, _ = load_model(resolve_model_path(None))
    for layer in model.layers:
        try:
            weights = shipped.get_layer(layer.name).get_weights()
        except ValueError:  # a layer the shipped model lacks
            continue
        if [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
    classes = {"0": "negative", "1": "proc0000000", "2": "proc0000001"}
    card = {"voxel_size": 10.0, "box_size": SMALL_BOX, "classes": classes, "embedding_geometry": "cosine"}
    return save_model(model, tmp_path_factory.mktemp("small_model") / "small.keras", card)


@pytest.fixture(scope="session")
def small_box_config(tmp_path_factory) -> Path:
    """A simulation config file (simulate --config, train --sim-config) of 16^3 boxes, for tests of what does not
    depend on the box: a fifteenth of the default 40^3's voxels to simulate and train on."""
    path = tmp_path_factory.mktemp("config") / "small_box.json"
    path.write_text(f'{{"box_size": {SMALL_BOX}}}')
    return path


def two_kinds_of_picks(n: int, box: int = SMALL_BOX, seed: int = 0) -> np.ndarray:
    """``n`` noisy boxes, the first half with a dense cube off centre, the rest with a thin slab: two kinds of pick
    for a pull towards neighbours to act on."""
    vols = np.random.default_rng(seed).standard_normal((n, box, box, box)).astype(np.float32)
    q = box // 4
    vols[: n // 2, q : 2 * q, q : 3 * q, q : 2 * q] += 1.5
    vols[n // 2 :, 2 * q - 1 : 2 * q + 1, :, :] += 1.5
    return vols
