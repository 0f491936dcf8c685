"""The command line end to end on a small simulated tomogram: simulate, embed, cluster, report; bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from deepfinder_unsup.cli import main
from deepfinder_unsup.io import read_embeddings, read_objl, write_mrc, write_objl
from deepfinder_unsup.io.objl import new_object

METRICS_PER_K_KEYS = {
    "k",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "eigengap",
    "homogeneity",
    "completeness",
    "v_measure",
    "ari",
    "nmi",
}


@pytest.fixture(scope="module")
def model_file(small_model):
    """The small model (16^3 boxes; conftest.py): these tests check the plumbing, not accuracy."""
    return small_model


@pytest.fixture(scope="module")
def tomogram(tmp_path_factory):
    out = tmp_path_factory.mktemp("tomo")
    assert (
        main(
            [
                "simulate-tomogram",
                "--structures",
                "builtin:ring",
                "builtin:dumbbell",
                "builtin:globule",
                "--out",
                str(out),
                "--shape",
                "64",
                "160",
                "160",
                "--particles",
                "30",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    return out


def test_simulate_tomogram_writes_consistent_files(tomogram):
    objl = read_objl(tomogram / "objects.xml")
    assert 20 <= len(objl) <= 30 and {o["label"] for o in objl} == {1, 2, 3}
    lines = (tomogram / "particle_locations.txt").read_text().split("\n")
    assert lines[0].split()[0] == objl[0]["class_name"]


def test_embed_then_cluster_end_to_end(tomogram, model_file, tmp_path):
    emb_path = tmp_path / "emb.h5"
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tomogram / "tomogram.mrc"),
                "--objl",
                str(tomogram / "objects.xml"),
                "--model",
                str(model_file),
                "--out",
                str(emb_path),
                "--border",
                "pad",
            ]
        )
        == 0
    )
    emb, objl, attrs = read_embeddings(emb_path)
    picks = read_objl(tomogram / "objects.xml")
    assert emb.shape == (len(picks), 32) and emb.dtype == np.float32
    assert [o["label"] for o in objl] == [o["label"] for o in picks]
    out = tmp_path / "clusters"
    assert main(["cluster", str(emb_path), "--k", "2:4", "--out", str(out), "--evaluate"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["k"] for r in doc["per_k"]] == [2, 3, 4]
    for row in doc["per_k"]:
        assert METRICS_PER_K_KEYS <= set(row) and all(isinstance(row[key], (int, float)) for key in row)
        assert 0 <= row["v_measure"] <= 1
    assert doc["selected_k"] in (2, 3, 4) and doc["best_k_by_v_measure"] in (2, 3, 4)
    for k in (2, 3, 4):
        clusters = read_objl(out / f"clusters_k{k}.xml")
        assert len(clusters) == len(picks)
        assert {o["label"] for o in clusters} <= set(range(1, k + 1))
        assert [(o["x"], o["y"], o["z"], o["phi"]) for o in clusters] == [
            (o["x"], o["y"], o["z"], o["phi"]) for o in picks
        ]  # other attributes kept
        assert (out / f"clusters_k{k}.star").exists()
    assert (out / "clusters.csv").read_text().splitlines()[0].endswith("cluster_k2,cluster_k3,cluster_k4")
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "t-SNE" in html and "Contingency" in html
    # never overwrite what exists
    assert main(["cluster", str(emb_path), "--k", "2:3", "--out", str(out)]) == 1  # bad input: exit 1


def test_embed_from_relion_star_matches_the_xml_path(tomogram, model_file, tmp_path, caplog, capsys):
    from deepfinder_unsup.io import write_star

    picks = read_objl(tomogram / "objects.xml")
    write_star(picks, tmp_path / "p.star", tomo_names=["tomogram"])
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tomogram / "tomogram.mrc"),
                "--star",
                str(tmp_path / "p.star"),
                "--model",
                str(model_file),
                "--out",
                str(tmp_path / "star.h5"),
                "--border",
                "pad",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tomogram / "tomogram.mrc"),
                "--objl",
                str(tomogram / "objects.xml"),
                "--model",
                str(model_file),
                "--out",
                str(tmp_path / "xml.h5"),
                "--border",
                "pad",
            ]
        )
        == 0
    )
    a, objl_a, _ = read_embeddings(tmp_path / "star.h5")
    b, _, _ = read_embeddings(tmp_path / "xml.h5")
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert [o["label"] for o in objl_a] == [o["label"] for o in picks]
    cluster = ["cluster", str(tmp_path / "star.h5"), "--k", "2", "--no-report", "--out"]
    capsys.readouterr()
    assert main([*cluster, str(tmp_path / "c")]) == 0 and (tmp_path / "c" / "clusters_k2_particles.star").exists()
    assert f"own tables and columns: {tmp_path / 'c' / 'clusters_k2_particles.star'}" in capsys.readouterr().out
    # the STAR file re-sorted after embed: its rows are no longer the embedded picks; the user's-own-file output,
    # which would give each cluster other particles, is not written (and said), the package's files are
    write_star(picks[::-1], tmp_path / "p.star", tomo_names=["tomogram"], overwrite=True)
    assert main([*cluster, str(tmp_path / "c2")]) == 0 and (tmp_path / "c2" / "clusters_k2.star").exists()
    assert not (tmp_path / "c2" / "clusters_k2_particles.star").exists()
    assert "changed since embed read the picks from it" in caplog.text


def test_cluster_without_evaluate_has_no_truth_keys(tomogram, model_file, tmp_path):
    emb_path = tmp_path / "e.h5"
    main(
        [
            "embed",
            "--tomograms",
            str(tomogram / "tomogram.mrc"),
            "--objl",
            str(tomogram / "objects.xml"),
            "--model",
            str(model_file),
            "--out",
            str(emb_path),
            "--border",
            "pad",
        ]
    )
    assert main(["cluster", str(emb_path), "--k", "3", "--out", str(tmp_path / "c"), "--no-report"]) == 0
    doc = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert "v_measure" not in doc["per_k"][0] and "best_k_by_v_measure" not in doc


def test_bad_inputs_get_one_clear_error(tmp_path, model_file, capsys, rng):
    write_mrc(rng.standard_normal((48, 48, 48)), tmp_path / "t.mrc", 10.0)
    write_objl([], tmp_path / "empty.xml")
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tmp_path / "t.mrc"),
                "--objl",
                str(tmp_path / "empty.xml"),
                "--model",
                str(model_file),
                "--out",
                str(tmp_path / "e.h5"),
            ]
        )
        == 1
    )
    assert "empty.xml: the object list is empty" in capsys.readouterr().err
    adapt_args = ["adapt", "--tomograms", str(tmp_path / "t.mrc"), "--objl", str(tmp_path / "empty.xml")]
    assert main([*adapt_args, "--model", str(model_file), "--out", str(tmp_path / "a.keras")]) == 1
    assert "empty.xml: the object list is empty: no particles to adapt on" in capsys.readouterr().err
    assert not (tmp_path / "a.keras").exists() and not list(tmp_path.glob(".a.keras.adapt-*"))
    import mrcfile

    with mrcfile.new(tmp_path / "nosize.mrc") as m:
        m.set_data(rng.standard_normal((48, 48, 48)).astype(np.float32))
    write_objl([new_object(1, 24, 24, 24)], tmp_path / "one.xml")
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tmp_path / "nosize.mrc"),
                "--objl",
                str(tmp_path / "one.xml"),
                "--model",
                str(model_file),
                "--out",
                str(tmp_path / "e.h5"),
            ]
        )
        == 1
    )
    assert "nosize.mrc: header voxel size is 0" in capsys.readouterr().err
    (tmp_path / "fake.keras").write_text("not a model")
    assert (
        main(
            [
                "embed",
                "--tomograms",
                str(tmp_path / "t.mrc"),
                "--objl",
                str(tmp_path / "one.xml"),
                "--model",
                str(tmp_path / "fake.keras"),
                "--out",
                str(tmp_path / "e.h5"),
            ]
        )
        == 1
    )
    assert "fake.keras: not a model file" in capsys.readouterr().err
    assert main(["cluster", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "c")]) == 1
    assert "missing.h5: embeddings file not found" in capsys.readouterr().err
    assert not (tmp_path / "e.h5").exists()


@pytest.mark.parametrize("earlier", ["model.keras", "last.keras", "history.csv", "epoch_003.keras"])
def test_train_refuses_a_folder_holding_an_earlier_run_unless_resumed_or_overwritten(tmp_path, capsys, earlier):
    """Only a finished run's model.keras was refused: a new run in an interrupted run's folder replaced its
    checkpoints and history without a word. Now refused before any work, the file untouched; --resume and
    --overwrite go on (here to the missing training file)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / earlier).write_text("two hours of training")
    common = ["train", "--train", str(tmp_path / "t.h5"), "--val", str(tmp_path / "v.h5"), "--out", str(out)]
    assert main([*common, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{out / earlier}: an earlier training run's file; pass --resume to continue that run" in err
    assert (out / earlier).read_text() == "two hours of training"
    for flag in ("--resume", "--overwrite"):
        assert main([*common, flag, "--quiet"]) == 1
        assert "data set file not found" in capsys.readouterr().err


def test_wrong_voxel_size_is_explained(model_file):
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io import InputError

    emb = Embedder(model_file).fit()
    with pytest.raises(InputError, match="13.68 Å/voxel, the model expects 10 Å: resample"):
        emb.transform(np.zeros((1, 16, 16, 16), np.float32), voxel_size=13.68)
    with pytest.raises(InputError, match=r"shape \(1, 32, 32, 32\), the model expects \(N, 16, 16, 16\)"):
        emb.transform(np.zeros((1, 32, 32, 32), np.float32))


def test_embedder_is_a_scikit_learn_transformer(model_file, rng):
    from sklearn.base import clone
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline

    from deepfinder_unsup.embed import Embedder

    x = rng.standard_normal((20, 16, 16, 16)).astype(np.float32)
    emb = Embedder(model_file, batch_size=8)  # 8 + 8 + 4: a short last batch
    assert clone(emb).get_params() == emb.get_params()
    pipe = make_pipeline(emb, KMeans(2, n_init=2, random_state=0)).fit(x)
    assert pipe.predict(x).shape == (20,)
    full = emb.transform(x)
    # chunks that cross the batch boundaries: each must be embedded as in one call
    np.testing.assert_allclose(emb.transform_batches(iter([x[:3], x[3:14], x[14:]])), full, atol=1e-5)


def test_help_runs_without_tensorflow_chatter():
    proc = subprocess.run([sys.executable, "-m", "deepfinder_unsup.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "embed" in proc.stdout and proc.stderr == ""


def test_embed_prints_no_tensorflow_log_lines(tmp_path):
    """TensorFlow 2.21 logs 'E0000 ... tfg_optimizer_hook ... failed: INVALID_ARGUMENT' (harmless) whenever it
    traces the shipped model's head for a new batch shape: a user's plain ``embed`` must not show them (it
    showed six)."""
    import os
    import re

    rng = np.random.default_rng(3)
    write_mrc(rng.standard_normal((48, 64, 64)).astype(np.float32), tmp_path / "t.mrc", 10.0)
    write_objl([new_object(1, 20 + 4 * i, 30, 24, tomo_idx=0) for i in range(5)], tmp_path / "p.xml")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"TQDM_DISABLE": "1"}
    args = ["--objl", tmp_path / "p.xml", "--tomograms", tmp_path / "t.mrc", "--model", "general"]
    args += ["--batch-size", "2", "--out", tmp_path / "e.h5"]  # 2 + 2 + 1: two traced batch shapes
    cmd = [sys.executable, "-m", "deepfinder_unsup.cli", "embed", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_embeddings(tmp_path / "e.h5")[0].shape == (5, 32)
    assert not [line for line in proc.stderr.splitlines() if re.match(r"[IWEF]\d{4} ", line)], proc.stderr


def test_bfloat16_path_is_really_bf16_and_close_to_float32(model_file, rng):
    import keras

    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import embedding_model, with_dtype_policy

    net = with_dtype_policy(embedding_model(load_model(model_file)[0]), "mixed_bfloat16")
    convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv3D)]
    assert all(layer.compute_dtype == "bfloat16" for layer in convs)
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    a = Embedder(model_file, tta=False).transform(x)  # one view: the arithmetic is what differs
    b = Embedder(model_file, precision="bfloat16", tta=False).transform(x)
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_shipped_model_separates_three_shapes_in_a_new_tomogram(tmp_path):
    """With the defaults a user gets (shipped model, L2-normalised k-means), three built-in shapes in a freshly
    simulated tomogram come out as three clusters: V = 1.0 measured, 0.87 without the normalisation."""
    tomo = tmp_path / "tomo"
    args = ["--structures", "builtin:ring", "builtin:dumbbell", "builtin:globule", "--out", str(tomo)]
    assert main(["simulate-tomogram", *args, "--shape", "64", "200", "200", "--particles", "45", "--seed", "1"]) == 0
    emb = tmp_path / "e.h5"
    picks = ["--objl", str(tomo / "objects.xml"), "--tomograms", str(tomo / "tomogram.mrc")]
    assert main(["embed", *picks, "--out", str(emb), "--precision", "float32"]) == 0
    assert main(["cluster", str(emb), "--k", "3", "--evaluate", "--no-report", "--out", str(tmp_path / "c")]) == 0
    doc = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert doc["normalise"] == "l2" and doc["n_particles"] >= 40
    assert doc["per_k"][0]["v_measure"] > 0.8


def test_demo_runs_the_whole_pipeline_and_refuses_a_used_folder(tmp_path):
    from deepfinder_unsup.pipeline import DEMO_SHAPES, run_demo

    out = tmp_path / "demo"
    doc = run_demo(out, n_particles=60, shape=(64, 192, 192), seed=1)
    assert [r["k"] for r in doc["per_k"]] == list(range(2, 11)) and doc["selected_k"] in range(2, 11)
    picks = read_objl(out / "tomogram" / "objects.xml")
    assert {o["label"] for o in picks} == set(range(1, len(DEMO_SHAPES) + 1))
    assert doc["n_particles"] == len(picks)  # border picks padded, none lost
    at_truth = next(r for r in doc["per_k"] if r["k"] == len(DEMO_SHAPES))
    assert at_truth["v_measure"] > 0.4  # the shipped model separates the built-in shapes (0.72 with 215 picks)
    assert (out / "clusters" / "report.html").exists()
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(out)
