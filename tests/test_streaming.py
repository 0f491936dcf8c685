"""Embedding picks in resumable units: the same rows as a direct embedding, an interrupted run resumed, a
failing tomogram reported while the others finish, Dask workers giving the serial result, precision auto."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from deepfinder_unsup import streaming
from deepfinder_unsup.cli import main
from deepfinder_unsup.embed import Embedder, cpu_has_bf16, resolve_precision
from deepfinder_unsup.extract import extract_subtomograms
from deepfinder_unsup.io import InputError, read_embeddings, read_objl, write_mrc, write_objl
from deepfinder_unsup.io.objl import new_object
from deepfinder_unsup.io.resumable import partial_path

from .conftest import SMALL_BOX


@pytest.fixture(scope="module")
def picks(tmp_path_factory):
    """Three small tomograms and 120 picks interleaved across them, some near the borders."""
    folder = tmp_path_factory.mktemp("picks")
    rng = np.random.default_rng(5)
    tomograms = []
    for t in range(3):
        tomograms.append(folder / f"t{t}.mrc")
        write_mrc(rng.standard_normal((50, 70, 70)).astype(np.float32), tomograms[-1], 10.0)
    objl = [
        new_object(int(rng.integers(1, 3)), *rng.uniform(0, [69.4, 69.4, 49.4]), tomo_idx=int(rng.integers(0, 3)))
        for _ in range(120)
    ]
    write_objl(objl, folder / "picks.xml")
    return folder, [str(t) for t in tomograms]


@pytest.fixture(scope="module")
def run_embed(small_model):
    """The CLI on the picks with the small model (the streaming does not depend on the model), one view (the
    streaming is under test, not the views) unless ``extra`` asks --tta."""

    def run(folder, tomograms, out, *extra) -> int:
        args = ["embed", "--objl", str(folder / "picks.xml"), "--tomograms", *tomograms, "--out", str(out)]
        views = [] if "--tta" in extra else ["--no-tta"]
        return main([*args, "--model", str(small_model), "--precision", "float32", "--quiet", *views, *extra])

    return run


@pytest.fixture(scope="module")
def reference(picks, small_model):
    """The embeddings computed another way: extract every box in memory, then Embedder.transform."""
    folder, tomograms = picks
    objl = read_objl(folder / "picks.xml")
    vols, kept = extract_subtomograms(tomograms, objl, box_size=SMALL_BOX, voxel_size=10.0, border="pad")
    return Embedder(small_model, precision="float32", tta=False).transform(vols), kept


def test_streamed_rows_match_a_direct_embedding_in_pick_order(picks, reference, tmp_path, monkeypatch, run_embed):
    folder, tomograms = picks
    monkeypatch.setattr(streaming, "UNIT_PICKS", 16)  # many units per tomogram
    assert run_embed(folder, tomograms, tmp_path / "e.h5") == 0
    emb, objl, attrs = read_embeddings(tmp_path / "e.h5")
    ref_emb, ref_objl = reference
    assert objl == ref_objl  # same rows, same order as the picks, border flags included
    assert any(o["border_padded"] for o in objl)
    np.testing.assert_allclose(emb, ref_emb, rtol=1e-4, atol=1e-4 * np.abs(ref_emb).max())
    assert not partial_path(tmp_path / "e.h5").exists()


def test_units_group_picks_by_tomogram_and_cover_each_once():
    objl = [new_object(1, 1, 1, 1, tomo_idx=t) for t in (2, 0, 2, 1, 0, 2, 2)]
    units = streaming.plan_units(objl, max_picks=2)
    assert [u.tolist() for u in units] == [[0, 2], [5, 6], [1, 4], [3]]


def test_interrupted_run_is_refused_then_resumed_without_redoing_done_units(
    picks, reference, tmp_path, monkeypatch, run_embed
):
    folder, tomograms = picks
    out = tmp_path / "e.h5"
    monkeypatch.setattr(streaming, "UNIT_PICKS", 16)
    real_embed_unit = streaming.embed_unit
    calls = []

    def interrupted_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[3])
        return real_embed_unit(*args, **kwargs)

    monkeypatch.setattr(streaming, "embed_unit", interrupted_after_three)
    assert run_embed(folder, tomograms, out) == 130
    assert not out.exists() and partial_path(out).exists()
    with pytest.raises(InputError, match="incomplete file"):
        read_embeddings(partial_path(out))
    assert run_embed(folder, tomograms, out) == 1  # a rerun without --resume does not silently restart

    done = {int(i) for unit in calls for i in unit}
    resumed = []

    def recording(*args, **kwargs):
        resumed.append(args[3])
        return real_embed_unit(*args, **kwargs)

    monkeypatch.setattr(streaming, "embed_unit", recording)
    assert run_embed(folder, tomograms, out, "--resume") == 0
    assert done.isdisjoint(int(i) for unit in resumed for i in unit)  # finished units were not redone
    emb, objl, _ = read_embeddings(out)
    np.testing.assert_allclose(emb, reference[0], rtol=1e-4, atol=1e-4 * np.abs(reference[0]).max())
    assert objl == reference[1] and not partial_path(out).exists()


def test_resume_with_other_inputs_is_refused(picks, tmp_path, monkeypatch, run_embed):
    folder, tomograms = picks
    out = tmp_path / "e.h5"
    monkeypatch.setattr(streaming, "embed_unit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert run_embed(folder, tomograms, out) == 130
    monkeypatch.undo()
    assert run_embed(folder, tomograms[::-1], out, "--resume") == 1
    assert run_embed(folder, tomograms, out, "--border", "skip", "--resume") == 1
    with pytest.raises(InputError, match="started with other border"):
        streaming.open_partial(out, 120, 32, SMALL_BOX, {"border": "skip"}, resume=True, overwrite=False)


def test_a_failing_tomogram_is_reported_and_the_others_finish(picks, tmp_path, capsys, caplog, run_embed):
    folder, tomograms = picks
    bad = tmp_path / "t1.mrc"
    data = np.random.default_rng(0).standard_normal((50, 70, 70)).astype(np.float32)
    data[:, :, :] = np.nan
    write_mrc(data, bad, 10.0)
    mixed = [tomograms[0], str(bad), tomograms[2]]
    out = tmp_path / "e.h5"
    assert run_embed(folder, mixed, out) == 1
    err = capsys.readouterr().err + caplog.text
    assert f"{bad}: particle" in err and "NaN" in err and "1 of 3 units failed" in err
    status = streaming.PartialEmbeddings(partial_path(out)).status()
    objl = read_objl(folder / "picks.xml")
    on_bad = np.array([o["tomo_idx"] == 1 for o in objl])
    assert (status[on_bad] == 0).all() and (status[~on_bad] != 0).all()  # the others are done and kept
    write_mrc(np.random.default_rng(1).standard_normal((50, 70, 70)), bad, 10.0, overwrite=True)
    assert run_embed(folder, mixed, out, "--resume") == 0
    assert len(read_embeddings(out)[0]) == 120


def test_dask_workers_give_the_serial_result(picks, reference, tmp_path, run_embed, small_model):
    """Plain and with --tta: the workers' embeddings are those computed in memory (for --tta, the mean over
    the four views of Embedder(tta=True)), and the file records the option."""
    distributed = pytest.importorskip("distributed")
    folder, tomograms = picks
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        assert run_embed(folder, tomograms, tmp_path / "e.h5", "--scheduler", lc.scheduler_address) == 0
        assert run_embed(folder, tomograms, tmp_path / "t.h5", "--scheduler", lc.scheduler_address, "--tta") == 0
    emb, objl, _ = read_embeddings(tmp_path / "e.h5")
    assert objl == reference[1]
    np.testing.assert_allclose(emb, reference[0], rtol=1e-4, atol=1e-4 * np.abs(reference[0]).max())
    vols, _ = extract_subtomograms(tomograms, read_objl(folder / "picks.xml"), SMALL_BOX, 10.0, border="pad")
    every = slice(None, None, 4)  # a quarter of the rows, from every tomogram: the order is checked above
    want = Embedder(small_model, precision="float32", tta=True).transform(vols[every])
    tta, tta_objl, attrs = read_embeddings(tmp_path / "t.h5")
    assert tta_objl == reference[1] and attrs["tta"] in (True, 1)
    np.testing.assert_allclose(tta[every], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert np.abs(tta - emb).max() > 1e-3  # the views changed something: not the plain embeddings again


def test_precision_auto_follows_the_processor(monkeypatch):
    import deepfinder_unsup.embed as embed

    monkeypatch.setattr(embed, "_gpu_visible", lambda: False)
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("float32") == "float32"
    with pytest.raises(InputError, match="precision must be"):
        resolve_precision("int4")
    flags = open("/proc/cpuinfo").read() if sys.platform == "linux" else ""
    assert cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_embed_killed_by_sigterm_resumes_to_the_full_result(picks, reference, tmp_path, run_embed, small_model):
    """A real kill in a subprocess: the partial file stays, marked incomplete; --resume completes it."""
    folder, tomograms = picks
    out = tmp_path / "e.h5"
    code = (
        "import sys, deepfinder_unsup.streaming as s; s.UNIT_PICKS = 8; "
        "real = s.embed_unit\n"
        "def slow(*a, **k):\n"
        "    import time; time.sleep(0.5); return real(*a, **k)\n"
        "s.embed_unit = slow\n"
        "from deepfinder_unsup.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    args = [
        "--objl",
        str(folder / "picks.xml"),
        "--tomograms",
        *tomograms,
        "--out",
        str(out),
        "--model",
        str(small_model),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "embed", *args, "--precision", "float32", "--quiet", "--no-tta"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None and done < 24:
        time.sleep(0.5)
        try:
            done = int((streaming.PartialEmbeddings(partial_path(out)).status() != 0).sum())
        except (OSError, KeyError, FileNotFoundError):
            pass  # not created yet, or being written
    assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()[1][-2000:]}"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert not out.exists() and partial_path(out).exists()
    assert run_embed(folder, tomograms, out, "--resume") == 0
    emb, objl, _ = read_embeddings(out)
    assert objl == reference[1]
    np.testing.assert_allclose(emb, reference[0], rtol=1e-4, atol=1e-4 * np.abs(reference[0]).max())


def test_dask_simulation_is_the_serial_simulation(tmp_path):
    """Same seed, same data, whether simulated here or by Dask workers (chunks finish in any order)."""
    distributed = pytest.importorskip("distributed")
    from deepfinder_unsup.simulate import dataset as simdata
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.structures import builtin_structure

    structures = [builtin_structure("ring"), builtin_structure("barrel")]
    config = SimConfig(tilt_step=10)
    serial, objl, names = simdata.simulate_dataset(structures, 5, config, seed=4, n_workers=1, progress=False)
    simdata.DASK_CHUNK = 2
    try:
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc,
            distributed.Client(lc) as client,
        ):
            on_dask, objl_d, names_d = simdata.simulate_dataset(
                structures, 5, config, seed=4, progress=False, client=client
            )
    finally:
        simdata.DASK_CHUNK = 32
    np.testing.assert_array_equal(on_dask, serial)
    assert objl_d == objl and names_d == names


def test_int8_embeddings_follow_float32(tmp_path, monkeypatch):
    """OpenVINO int8 (quantised once, cached by the model's digest) stays close to fp32 on simulated data, and
    on sub-tomograms of higher contrast than any it was calibrated on (a large dense complex): activation
    ranges averaged over the calibration samples (NNCF's default) clip those: worst cosine 0.83, over 0.99 now."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from deepfinder_unsup import int8
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(int8, "CALIBRATION_SIZE", 24)
    vols, objl, _ = simulate_dataset(load_structures(["builtin"]), 4, SimConfig(), seed=9, n_workers=1, progress=False)
    z, y, x = np.mgrid[:40, :40, :40]
    blob = ((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 36).astype(np.float32)
    bright = np.stack([(v - v.mean()) / v.std() + 6 * blob * (-1) ** i for i, v in enumerate(vols[:8])])
    vols = np.concatenate([vols, bright])
    fp32 = Embedder("shrec21", tta=False).transform(vols)
    quantised = Embedder("shrec21", precision="int8", tta=False).transform(vols)
    assert len(list((tmp_path / "deepfinder-unsup").glob("*-int8-c24-minmax.xml"))) == 1
    cosine = (fp32 * quantised).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(quantised, axis=1)
    assert cosine.min() > 0.99, f"worst sub-tomogram's cosine to fp32 {cosine.min():.3f}"

    # nearest neighbours mostly agree: the geometry that clustering sees is kept
    def nearest(e):
        d = ((e[:, None] - e[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return d.argmin(1)

    assert (nearest(fp32) == nearest(quantised)).mean() > 0.6


def test_training_precision_auto_follows_the_processor_and_emulated_bf16_is_warned_of(monkeypatch, caplog):
    import logging

    import deepfinder_unsup.embed as embed
    from deepfinder_unsup.train import training_precision

    monkeypatch.setattr(embed, "_gpu_visible", lambda: False)
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: True)
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        assert training_precision("auto") == "mixed_bfloat16"
        assert training_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert "emulated" not in caplog.text
    monkeypatch.setattr(embed, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        assert training_precision("auto") == "float32"
        assert training_precision("float32") == "float32"
        assert "emulated" not in caplog.text
        assert training_precision("mixed_bfloat16") == "mixed_bfloat16"  # the user's choice, with a warning
    assert "emulated and many times slower" in caplog.text
    with pytest.raises(InputError, match="training precision must be"):
        training_precision("bfloat16")
