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
    assert PRETRAINED_MODEL.stat().st_size < 15e6


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
    emb = load_pretrained()
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
    embedder = Embedder(name)
    got = embedder.transform(volumes)
    assert np.abs(got - expected).max(axis=1, keepdims=True).max() < 1e-3 * scale.min()
    # the tolerance is tight enough to see an axis-order slip ([x, y, z] read as [z, y, x])
    swapped = embedder.transform(np.ascontiguousarray(np.swapaxes(volumes, 1, 3)))
    assert (np.abs(swapped - expected).max(axis=1) > 1e-2 * scale[:, 0]).all()
