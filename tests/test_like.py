"""Input matching (``simulate.like``, ``simulate --like``): the missing wedge, the contrast polarity and a
low-pass are recovered from simulated boxes whose acquisition is known, and imposed on new simulations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepfinder_unsup.simulate.config import SimConfig
from deepfinder_unsup.simulate.like import (
    AcquisitionEstimate,
    config_like,
    estimate_polarity,
    estimate_tilt_range,
    match_lowpass,
    mean_power_spectrum,
)
from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram
from deepfinder_unsup.simulate.structures import load_structures


def _boxes(n: int, seed: int = 0, **settings) -> np.ndarray:
    library = StructureLibrary(load_structures(["procedural:4:700000"], 10.0))
    config = SimConfig(snr=0.2, tilt_step=3, **settings)
    rng = np.random.default_rng(seed)
    return np.stack([simulate_subtomogram(library, int(rng.integers(0, 5)), config, rng)[0] for _ in range(n)])


@pytest.mark.parametrize(("tilt", "polarity"), [((-30, 60), 1), ((-60, 45), -1)])
def test_asymmetric_wedge_and_polarity_are_recovered(tilt, polarity):
    """Which side of the wedge is which matters: -30/+60 and -60/+45 both come back within 4 degrees."""
    boxes = _boxes(40, tilt_min=tilt[0], tilt_max=tilt[1], polarity=polarity, lowpass=None)
    low, high = estimate_tilt_range(mean_power_spectrum(boxes))
    assert abs(low - tilt[0]) <= 4 and abs(high - tilt[1]) <= 4, (low, high)
    assert estimate_polarity(boxes) == polarity


def test_lowpass_is_found_by_synthesis_and_its_absence_too():
    filtered = _boxes(40, tilt_min=-50, tilt_max=50, lowpass=0.3, polarity=1)
    found, table = match_lowpass(filtered, (-50, 50), 1, n=16)
    assert found in (0.25, 0.35), table
    plain = _boxes(40, seed=1, tilt_min=-50, tilt_max=50, lowpass=None, polarity=1)
    assert match_lowpass(plain, (-50, 50), 1, n=16)[0] in (None, 0.6)


def test_lowpass_is_found_at_the_users_box_size():
    """The candidates are simulated at the picks' box, not the simulator's default 40 (at 24 the two radial
    profiles had different lengths: adapt --method like failed on any model of another box size)."""
    filtered = _boxes(24, box_size=24, tilt_min=-50, tilt_max=50, lowpass=0.3, polarity=1)
    found, table = match_lowpass(filtered, (-50, 50), 1, n=12)
    assert found in (0.25, 0.35), table


def test_matched_config_draws_around_the_estimate():
    estimate = AcquisitionEstimate(n_boxes=100, tilt_min=-42.0, tilt_max=55.0, lowpass=0.35, polarity=-1)
    config = config_like(estimate, SimConfig(snr=0.5))
    assert config.tilt_min == [-47.0, -37.0] and config.tilt_max == [50.0, 60.0]
    assert config.lowpass == pytest.approx([0.3, 0.4]) and config.polarity == -1 and config.snr == 0.5  # the rest kept
    mic = config.microscope(np.random.default_rng(0))
    assert -47 <= mic.tilt_min <= -37 and 50 <= mic.tilt_max <= 60


@pytest.mark.parametrize(("estimated", "matched"), [((-3.0, 0.0), (-20.0, 20.0)), ((-25.0, 15.0), (-25.0, 20.0))])
def test_a_tilt_range_no_series_has_is_matched_with_the_narrowest_one_not_an_inverted_range(estimated, matched, caplog):
    """Boxes whose power has no tilt series' wedge (oriented content: adapt's test picks gave -3/0 degrees) made
    ranges that ran backwards, and the first simulated batch failed with numpy's "high - low < 0"."""
    estimate = AcquisitionEstimate(n_boxes=30, tilt_min=estimated[0], tilt_max=estimated[1], lowpass=None, polarity=1)
    config = config_like(estimate, SimConfig())
    assert config.tilt_min == [matched[0] - 5, min(-20.0, matched[0] + 5)]
    assert config.tilt_max == [max(20.0, matched[1] - 5), matched[1] + 5]
    mic = config.microscope(np.random.default_rng(0))
    assert mic.tilt_min <= -20 and mic.tilt_max >= 20
    assert "not a tilt series'" in caplog.text


def test_a_config_that_no_draw_can_simulate_is_refused_naming_the_parameter():
    from deepfinder_unsup.io.files import InputError

    for values, needle in [
        ({"tilt_min": [-20, -60]}, "tilt_min [-20, -60]: the range runs backwards"),
        ({"snr": {"log": [0, 1]}}, "snr {'log': [0, 1]}: a log-uniform range must be above 0"),
        ({"defocus_um": [1, 2, 3]}, "defocus_um [1, 2, 3]: a range is two finite numbers"),
        ({"snr": [0.1, float("nan")]}, "a range is two finite numbers"),
        ({"wbp_filter": {"choices": []}}, "wbp_filter {'choices': []}: 'choices' must be a non-empty list"),
        ({"bfactor": {"lin": [1, 2]}}, "bfactor {'lin': [1, 2]}: a spec is a number"),
        ({"tilt_min": -10, "tilt_max": -20}, "every draw must give -90 <= tilt_min < tilt_max <= 90"),
        ({"tilt_max": {"choices": [60, 95]}}, "every draw must give"),
    ]:
        with pytest.raises(InputError, match="^mic.json: ") as caught:
            SimConfig.from_dict(values, where="mic.json")
        assert needle in str(caught.value), (values, str(caught.value))
    SimConfig.from_dict({"tilt_min": {"choices": [-70, -40]}, "tilt_max": [30, 90]}, where="mic.json")  # fine


def test_simulate_like_a_tomogram(tmp_path):
    """End to end: a tomogram acquired at -40/+55 degrees; ``simulate --like`` finds the wedge from random
    boxes of it and writes a data set simulated around it, with the estimate beside it."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.io.dataset import read_dataset

    cfg = tmp_path / "mic.json"
    cfg.write_text(json.dumps({"tilt_min": -40, "tilt_max": 55, "tilt_step": 3, "lowpass": None, "snr": 0.3}))
    tomo = tmp_path / "tomo"
    args = ["--structures", "builtin:ring", "builtin:globule", "--shape", "64", "160", "160", "--particles", "30"]
    assert main(["simulate-tomogram", *args, "--config", str(cfg), "--out", str(tomo), "--seed", "2"]) == 0
    out = tmp_path / "like"
    run = ["simulate", "--structures", "builtin:ring", "--per-class", "2", "--workers", "1", "--out", str(out)]
    assert main([*run, "--like", str(tomo / "tomogram.mrc")]) == 0
    doc = json.loads((out / "like.json").read_text())
    assert abs(doc["estimate"]["tilt_min"] + 40) <= 6 and abs(doc["estimate"]["tilt_max"] - 55) <= 6, doc
    sim = read_dataset(out / "dataset.h5").attrs["sim_config"]
    sim = json.loads(sim) if isinstance(sim, str) else sim
    assert sim["tilt_min"][0] < -30 and sim["tilt_max"][1] > 45


def test_like_on_an_empty_tomogram_names_a_random_box_not_a_particle(tmp_path, capsys):
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.io.mrc import write_mrc

    write_mrc(np.zeros((60, 80, 80), np.float32), tmp_path / "empty.mrc", 10.0)
    run = ["simulate", "--structures", "builtin:ring", "--per-class", "2", "--out", str(tmp_path / "out")]
    assert main([*run, "--like", str(tmp_path / "empty.mrc")]) == 1
    err = capsys.readouterr().err
    assert "empty.mrc: --like reads" in err and "a random box at (x, y, z)" in err and "particle" not in err
    assert not (tmp_path / "out" / "dataset.h5").exists()
