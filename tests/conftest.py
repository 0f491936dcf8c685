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
