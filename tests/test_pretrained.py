"""The shipped model: present, small, loadable offline without ../shared, rotation invariant, fast path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepfinder_unsup.embed import PRETRAINED_MODEL

pytest.importorskip("keras")

NO_NETWORK = textwrap.dedent("""
    import socket
    def _refuse(*args, **kwargs):
        raise OSError("network access attempted")
    socket.socket.connect = _refuse
    socket.create_connection = _refuse
""")


def test_shipped_model_is_in_the_package_and_small():
    assert PRETRAINED_MODEL.exists(), f"{PRETRAINED_MODEL} missing"
    assert PRETRAINED_MODEL.stat().st_size < 25e6  # the zoom head's weights (since session 67): 21 MB


def test_load_pretrained_offline_without_shared(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    code = (
        "import json, numpy as np, deepfinder_unsup as d; e = d.load_pretrained(); "
        "x = np.random.default_rng(0).standard_normal((2, 40, 40, 40)).astype('float32'); "
        "print(json.dumps({'shape': list(e.transform(x).shape), 'vs': e.voxel_size, 'box': e.box_size}))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"shape": [2, 32], "vs": 10.0, "box": 40}


def test_either_shipped_model_loads_by_name_as_the_docs_say():
    """``load_pretrained("shrec21")`` (the model card's and issue #9's spelling) was a TypeError: the function took
    no name."""
    from deepfinder_unsup import load_pretrained
    from deepfinder_unsup.io.files import InputError

    shrec21, general = load_pretrained("shrec21"), load_pretrained()
    assert shrec21._resolved_path().name == "f_theta_shrec21.keras" and len(shrec21.card["classes"]) == 14
    assert general._resolved_path() == load_pretrained("general")._resolved_path() == PRETRAINED_MODEL
    with pytest.raises(InputError, match="no shipped model named 'shrec'; choose from general, shrec21"):
        load_pretrained("shrec")


def test_card_describes_the_model():
    from deepfinder_unsup.model.card import read_card

    card = read_card(PRETRAINED_MODEL)
    for key in (
        "voxel_size",
        "box_size",
        "classes",
        "normalisation",
        "training",
        "validation",
        "package_version",
        "tensorflow_version",
    ):
        assert key in card
    assert card["embedding_dim"] == 32 and card["voxel_size"] == 10.0 and card["box_size"] == 40


def test_info_summarises_the_card_and_json_gives_all_of_it(capsys):
    """``info`` printed 700 lines of JSON (every class name); now a summary read from the card, --json the card."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.model.card import read_card

    card = read_card(PRETRAINED_MODEL)
    assert main(["info", "general"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 12 and "proc0000001" not in out
    assert f"sub-tomograms seen in training: {card['training']['samples_seen_total']:,}" in out
    assert f"classes trained: {len(card['classes'])}" in out and "compared by angle (cosine)" in out
    assert main(["info", "general", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == card


def test_card_summary_of_a_minimal_and_an_adapted_card():
    from deepfinder_unsup.model.card import card_summary

    minimal = card_summary({"voxel_size": 13.68, "box_size": 32})  # a card with only what read_card requires
    assert minimal[0].startswith("input: 32^3 voxel boxes at 13.68 Å") and "classes trained: 0" in minimal
    adapted = {"voxel_size": 10.0, "box_size": 40, "training": {"n_train": 8400, "minutes": 57.5}}
    adapted["adaptation"] = {"method": "neighbours", "n_picks": 2000, "kept": "adapted", "input_model": "general"}
    lines = card_summary(adapted)
    assert any(line.startswith("training set: 8,400 sub-tomograms (57.5 min") for line in lines)
    assert any(
        line.startswith("adapted: neighbours on 2000 picks") and "kept the adapted model" in line for line in lines
    )


def test_embeddings_are_rotation_invariant():
    """One particle under 20 random rotations stays nearer its own class centroid than any other."""
    from deepfinder_unsup.embed import load_pretrained
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram
    from deepfinder_unsup.simulate.structures import builtin_structure

    names = ("ring", "dumbbell", "helix_right", "globule")
    lib = StructureLibrary([builtin_structure(n) for n in names])
    cfg = fixed_config(snr=0.5)
    rng = np.random.default_rng(0)
    emb = load_pretrained(tta=False)  # the network's own invariance, without the averaged views
    vols, labels = [], []
    for label in range(1, len(names) + 1):
        for _ in range(20):
            vols.append(simulate_subtomogram(lib, label, cfg, rng)[0])
            labels.append(label)
    feats = emb.transform(np.stack(vols))
    labels = np.array(labels)
    centroids = np.stack([feats[labels == c].mean(axis=0) for c in range(1, len(names) + 1)])
    hits = []
    for label in range(1, len(names) + 1):  # 20 new random rotations of one particle (same microscope, noise)
        rotated = np.stack(
            [simulate_subtomogram(lib, label, cfg, np.random.default_rng([label, i]))[0] for i in range(20)]
        )
        dist = np.linalg.norm(emb.transform(rotated)[:, None] - centroids[None], axis=-1)
        hits.append((dist.argmin(axis=1) == label - 1).mean())
        assert hits[-1] >= 0.8, names[label - 1]  # chance: 0.25
    assert np.mean(hits) >= 0.9


@pytest.mark.parametrize("name", ["shrec21", "general"])
def test_shipped_embeddings_do_not_drift(name):
    """A fixed analytic input must keep its stored 32-D output (tests/data/make_embedding_reference.py).

    Catches changes in loading, normalisation, axis order or dtype; a deliberate model change regenerates it."""
    import importlib.util
    from pathlib import Path

    from deepfinder_unsup.embed import Embedder, resolve_model_path

    script = Path(__file__).parent / "data" / "make_embedding_reference.py"
    spec = importlib.util.spec_from_file_location("make_embedding_reference", script)
    ref_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref_module)
    stored = json.loads(ref_module.REFERENCE.read_text())[name]
    assert ref_module.model_digest(resolve_model_path(name)) == stored["sha256"], (
        f"the shipped {name} model changed: if on purpose, run python {script}"
    )
    volumes = ref_module.reference_volumes()
    expected = np.array(stored["embeddings"])
    scale = np.linalg.norm(expected, axis=1, keepdims=True)
    embedder = Embedder(name, tta=False)  # the network's own output, one view
    got = embedder.transform(volumes)
    assert np.abs(got - expected).max(axis=1, keepdims=True).max() < 1e-3 * scale.min()
    np.testing.assert_array_equal(embedder.transform(volumes), got)  # the same run twice: the same bytes
    # the tolerance is tight enough to see an axis-order slip ([x, y, z] read as [z, y, x])
    swapped = embedder.transform(np.ascontiguousarray(np.swapaxes(volumes, 1, 3)))
    assert (np.abs(swapped - expected).max(axis=1) > 1e-2 * scale[:, 0]).all()


def test_test_time_augmentation_is_the_mean_over_a_group_of_views(tmp_path):
    """The four views form a group, so the augmented embedding of any view of a particle is the particle's own
    (exactly, up to float rounding); the CLI's --tta gives the API's numbers and records the option."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io import read_embeddings, write_dataset
    from deepfinder_unsup.io.objl import new_object
    from deepfinder_unsup.volume import wedge_symmetric_views

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 40, 40, 40)).astype(np.float32)
    x[:, 14:22, 18:30, 16:21] += 2.0  # an off-centre, asymmetric object: each view differs
    tta = Embedder("general", tta=True).fit()
    plain = Embedder("general", tta=False).transform(x)
    want = tta.transform(x)
    assert np.abs(want - plain).max() > 1e-3  # the views are not all the same
    mean_of_units = np.mean(
        [
            e / np.linalg.norm(e, axis=1, keepdims=True)
            for e in map(Embedder("general", tta=False).transform, wedge_symmetric_views(x))
        ],
        axis=0,
    )
    np.testing.assert_allclose(want, mean_of_units, atol=1e-5)
    for view in wedge_symmetric_views(x)[1:]:
        np.testing.assert_allclose(tta.transform(np.ascontiguousarray(view)), want, atol=1e-5)
    write_dataset(tmp_path / "d.h5", x, [new_object(1, 20.0, 20.0, 20.0) for _ in range(3)], 10.0)
    cmd = ["embed", "--dataset", str(tmp_path / "d.h5"), "--precision", "float32"]
    for flags, expected in (([], want), (["--tta"], want), (["--no-tta"], plain)):  # four views unless --no-tta
        out = tmp_path / f"e{'-'.join(flags)}.h5"
        assert main([*cmd, *flags, "--out", str(out)]) == 0
        emb, _, attrs = read_embeddings(out)
        np.testing.assert_allclose(emb, expected, atol=1e-5)
        assert bool(attrs["tta"]) is (expected is want)


def test_test_time_augmentation_of_picks_in_a_tomogram(tmp_path):
    from deepfinder_unsup import extract_subtomograms
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io import read_embeddings, write_mrc, write_objl
    from deepfinder_unsup.io.objl import new_object

    rng = np.random.default_rng(6)
    write_mrc(rng.standard_normal((60, 64, 64)).astype(np.float32), tmp_path / "t.mrc", 10.0)
    objl = [new_object(1, 30.0, 31.0, 29.0), new_object(1, 25.0, 35.0, 30.0)]
    write_objl(objl, tmp_path / "p.xml")
    cmd = ["embed", "--objl", str(tmp_path / "p.xml"), "--tomograms", str(tmp_path / "t.mrc"), "--tta"]
    assert main([*cmd, "--precision", "float32", "--out", str(tmp_path / "e.h5")]) == 0
    emb, _, attrs = read_embeddings(tmp_path / "e.h5")
    vols, _ = extract_subtomograms([tmp_path / "t.mrc"], objl, 40, 10.0)
    np.testing.assert_allclose(emb, Embedder("general", tta=True).transform(vols), atol=1e-5)
    assert attrs["tta"] in (True, 1)
