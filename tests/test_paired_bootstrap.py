"""The paired bootstrap that decides whether a model is shipped (benchmarks/paired_bootstrap.py,
docs/training_history.md): its resampling keeps the classes, and its intervals hold 0 for two equal models and
exclude it for a clear gap."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "paired_bootstrap.py"
_spec = importlib.util.spec_from_file_location("paired_bootstrap", _PATH)
paired_bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paired_bootstrap)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_resample_keeps_each_class_size_and_draws_within_the_class():
    truth = np.array([0] * 7 + [3] * 2 + [5] * 11)
    idx = paired_bootstrap.stratified_resample(truth, np.random.default_rng(1))
    assert len(idx) == len(truth)
    for c in (0, 3, 5):
        assert (truth[idx] == c).sum() == (truth == c).sum()
    assert np.array_equal(np.sort(truth[idx]), np.sort(truth))


def test_two_equal_feature_sets_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 15)
    feats = _unit(rng.normal(size=(60, 8)) + 2 * np.eye(8)[truth])
    out = paired_bootstrap.paired_differences(feats, feats.copy(), truth, resamples=10)
    assert out["mean_difference"] == 0 and out["interval_90"] == [0, 0] and out["share_b_higher"] == 0
    assert out["v_a"] == out["v_b"]


def test_separated_classes_beat_noise_with_an_interval_above_zero():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 15)
    noise = _unit(rng.normal(size=(60, 8)))
    separated = _unit(rng.normal(scale=0.1, size=(60, 8)) + np.eye(8)[truth])
    out = paired_bootstrap.paired_differences(noise, separated, truth, resamples=10)
    assert out["v_b"] > 0.95 and out["v_a"] < 0.4
    assert out["interval_90"][0] > 0.5 and out["share_b_higher"] == 1.0
    flipped = paired_bootstrap.paired_differences(separated, noise, truth, resamples=10)
    assert flipped["interval_90"][1] < -0.5  # the sign is B - A
