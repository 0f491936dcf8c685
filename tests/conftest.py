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
