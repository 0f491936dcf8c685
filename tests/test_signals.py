"""Kill tests: SIGINT / SIGTERM in the middle of simulate, embed, cluster and train leave nothing under a final
name, end with one line (no traceback) and the conventional exit status; train resumes from its checkpoint.
Determinism: the same command and seed give byte-identical simulated data and cluster assignments."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepfinder_unsup.io.dataset import write_embeddings
from deepfinder_unsup.io.objl import new_object

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _default_signal_handlers() -> None:
    """A suite started in the background (``cmd &``, nohup) ignores SIGINT, and a child that starts with SIGINT
    ignored keeps it ignored: give the command the default handlers a user's terminal gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepfinder_unsup.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=_default_signal_handlers,
    )


def wait_for(predicate, timeout: float = 120.0) -> None:
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise TimeoutError("the command never reached the point to interrupt")
        time.sleep(0.1)


def interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def assert_one_line_interrupt(code: int, err: str, sig: int) -> None:
    assert code == (130 if sig == signal.SIGINT else 143), (code, err)
    assert "Traceback" not in err, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("interrupted ("), err


def finished_files(folder: Path) -> list[Path]:
    """Files under their final name (hidden temporary and staging files excluded)."""
    if not folder.exists():
        return []
    return [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


@pytest.fixture(scope="module")
def big_embeddings(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kill")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 32)) * 3
    labels = rng.integers(0, 8, 6000)
    objl = [new_object(int(lab) + 1, i % 100, i // 100, 5, tomo_idx=0) for i, lab in enumerate(labels)]
    write_embeddings(d / "emb.h5", centres[labels] + rng.normal(size=(6000, 32)), objl, 10.0, 40)
    return d / "emb.h5"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_cluster_leaves_nothing_final(big_embeddings, tmp_path, sig):
    out = tmp_path / "clusters"
    proc = start("cluster", big_embeddings, "--k", "2:40", "--out", out)
    wait_for(out.exists)  # the embeddings are read and checked, the sweep is running
    time.sleep(1.0)
    assert proc.poll() is None, "finished before it could be interrupted: make the input larger"
    code, err = interrupt(proc, sig)
    assert_one_line_interrupt(code, err, sig)
    assert finished_files(out) == []
    assert list(out.iterdir()) == []  # the staging folder is gone too: a rerun starts clean


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_simulate_leaves_nothing_final(tmp_path, sig):
    out = tmp_path / "sim"
    proc = start("simulate", "--structures", "builtin", "--per-class", "300", "--out", out, "--workers", "1")
    time.sleep(6)  # imports done, simulating (3,000 sub-tomograms on one process take minutes)
    assert proc.poll() is None
    code, err = interrupt(proc, sig)
    assert_one_line_interrupt(code, err, sig)
    assert finished_files(out) == []


def test_interrupted_embed_leaves_nothing_final(tmp_path):
    from deepfinder_unsup.io.dataset import write_dataset

    rng = np.random.default_rng(1)
    n = 500  # interrupted after its first batch: several seconds of embedding left even with bf16 on AMX
    objl = [new_object(1, 20, 20, 20) for _ in range(n)]
    write_dataset(tmp_path / "d.h5", rng.random((n, 40, 40, 40), dtype=np.float32), objl, 10.0)
    out, log = tmp_path / "emb.h5", tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deepfinder_unsup.cli",
                "embed",
                "--dataset",
                str(tmp_path / "d.h5"),
                "--out",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env=ENV,
            preexec_fn=_default_signal_handlers,
        )
        # the progress bar has counted a first batch: the model is loaded and embedding is under way
        wait_for(lambda: re.search(rf"embed:.*\|\s*[1-9]\d*/{n}", log.read_text()) is not None, timeout=300)
        assert proc.poll() is None, "finished before it could be interrupted: make the input larger"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert_one_line_interrupt(proc.returncode, log.read_text(), signal.SIGTERM)
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".emb.h5")] == []


def test_interrupted_train_resumes_from_its_checkpoint(tmp_path):
    from deepfinder_unsup.io.dataset import write_dataset

    rng = np.random.default_rng(2)
    n = 16
    labels = np.arange(n) % 2
    vols = rng.standard_normal((n, 16, 16, 16), dtype=np.float32)  # a small box: the signals do not depend on it
    vols[labels == 1, 6:10, 6:10, 6:10] += 2.0
    objl = [new_object(int(lab), 8, 8, 8) for lab in labels]
    write_dataset(tmp_path / "t.h5", vols, objl, 10.0, class_names={0: "a", 1: "b"})
    out = tmp_path / "run"
    common = (
        "train",
        "--train",
        tmp_path / "t.h5",
        "--val",
        tmp_path / "t.h5",
        "--out",
        out,
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "8",
        "--patience",
        "100",
    )
    proc = start(*common, "--epochs", "40")
    wait_for(lambda: (out / "state.json").exists(), timeout=300)
    code, err = interrupt(proc, signal.SIGINT)
    assert_one_line_interrupt(code, err, signal.SIGINT)
    assert not (out / "model.keras").exists()
    done = json.loads((out / "state.json").read_text())["epoch"]
    assert done >= 1 and (out / "last.keras").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "deepfinder_unsup.cli", *map(str, common), "--epochs", str(done + 1), "--resume"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    history = (out / "history.csv").read_text().splitlines()
    epochs = [int(line.split(",")[0]) for line in history[1:]]
    assert epochs[-1] == done  # the resumed run trained epoch done + 1 (0-based index done), no restart at 0
    assert (out / "model.keras").exists()


def test_same_seed_same_simulated_data_and_clusters(tmp_path):
    from deepfinder_unsup.cli import main

    rng = np.random.default_rng(0)  # 800 picks of 8 blobs: k-means' seeding decides ties, as on 6,000
    labels = rng.integers(0, 8, 800)
    objl = [new_object(int(lab) + 1, i % 100, i // 100, 5, tomo_idx=0) for i, lab in enumerate(labels)]
    embeddings = tmp_path / "emb.h5"
    write_embeddings(embeddings, rng.normal(size=(8, 32))[labels] * 3 + rng.normal(size=(800, 32)), objl, 10.0, 40)

    for run in ("a", "b"):
        assert (
            main(
                [
                    "simulate",
                    "--structures",
                    "builtin:ring",
                    "procedural:2:5",
                    "--per-class",
                    "3",
                    "--seed",
                    "4",
                    "--workers",
                    "1",  # no fork from a test process that may hold threads
                    "--out",
                    str(tmp_path / f"sim_{run}"),
                    "--quiet",
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "cluster",
                    str(embeddings),
                    "--k",
                    "2:6",
                    "--seed",
                    "1",
                    "--no-report",
                    "--out",
                    str(tmp_path / f"cl_{run}"),
                    "--quiet",
                ]
            )
            == 0
        )
    from deepfinder_unsup.io.dataset import read_dataset

    a, b = read_dataset(tmp_path / "sim_a" / "dataset.h5"), read_dataset(tmp_path / "sim_b" / "dataset.h5")
    assert np.array_equal(a.subtomograms, b.subtomograms)
    assert (tmp_path / "cl_a" / "clusters.csv").read_bytes() == (tmp_path / "cl_b" / "clusters.csv").read_bytes()
