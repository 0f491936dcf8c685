"""copick: picks and OME-Zarr tomograms of a local project embedded as the same picks from MRC + XML would be,
and one pick set per cluster written back, read with copick's own API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepfinder_unsup.cli import main
from deepfinder_unsup.io import read_embeddings, read_objl, write_mrc, write_objl
from deepfinder_unsup.io.objl import new_object

copick = pytest.importorskip("copick")


@pytest.fixture
def project(tmp_path):
    """Two runs, tomograms at 10 Å (and a coarser 20 Å spacing that must not be chosen), rotated picks."""
    from copick.models import CopickLocation, CopickPoint
    from scipy.spatial.transform import Rotation

    config = {
        "config_type": "filesystem",
        "name": "test",
        "description": "",
        "version": "1.0.0",
        "pickable_objects": [
            {"name": "ribosome", "is_particle": True, "label": 1, "color": [255, 0, 0, 255], "radius": 120}
        ],
        "overlay_root": f"local://{tmp_path / 'overlay'}",
        "static_root": f"local://{tmp_path / 'static'}",
        "overlay_fs_args": {"auto_mkdir": True},
        "static_fs_args": {"auto_mkdir": True},
    }
    (tmp_path / "copick.json").write_text(json.dumps(config))
    root = copick.from_file(str(tmp_path / "copick.json"))
    rng = np.random.default_rng(3)
    volumes, picks = {}, {}
    for name in ("TS_01", "TS_02"):
        run = root.new_run(name)
        vol = rng.standard_normal((50, 64, 72)).astype(np.float32)
        run.new_voxel_spacing(10.0).new_tomogram("wbp").from_numpy(vol)
        run.new_voxel_spacing(20.0).new_tomogram("wbp").from_numpy(vol[::2, ::2, ::2].copy())
        volumes[name] = vol
        xyz = rng.uniform(5, [67, 59, 45], (6, 3))
        rots = Rotation.random(6, random_state=rng)
        pick_set = run.new_picks("ribosome", "0", "annotator")
        points = []
        for p, r in zip(xyz, rots):
            t = np.eye(4)
            t[:3, :3] = r.as_matrix()
            points.append(
                CopickPoint(location=CopickLocation(x=p[0] * 10, y=p[1] * 10, z=p[2] * 10), transformation_=t.tolist())
            )
        pick_set.points = points
        pick_set.store()
        picks[name] = (xyz, rots)
    return tmp_path, volumes, picks


def test_copick_picks_embed_like_the_same_picks_from_mrc_files(project, tmp_path):
    folder, volumes, picks = project
    args = ["embed", "--copick", str(folder / "copick.json"), "--object", "ribosome", "--precision", "float32"]
    assert main([*args, "--out", str(tmp_path / "e.h5")]) == 0
    emb, objl, attrs = read_embeddings(tmp_path / "e.h5")
    assert "--copick" in attrs["command"] and "--object ribosome" in attrs["command"]  # how to redo it
    # the same picks the ordinary way: MRC tomograms and a DeepFinder XML list
    tomos, ref_objl = [], []
    for idx, name in enumerate(("TS_01", "TS_02")):
        write_mrc(volumes[name], tmp_path / f"{name}.mrc", 10.0)
        tomos.append(str(tmp_path / f"{name}.mrc"))
        ref_objl += [new_object(1, *p, tomo_idx=idx) for p in picks[name][0]]
    write_objl(ref_objl, tmp_path / "picks.xml")
    ref = ["embed", "--objl", str(tmp_path / "picks.xml"), "--tomograms", *tomos, "--precision", "float32"]
    assert main([*ref, "--out", str(tmp_path / "ref.h5")]) == 0
    ref_emb, _, _ = read_embeddings(tmp_path / "ref.h5")
    np.testing.assert_allclose(emb, ref_emb, rtol=1e-4, atol=1e-4 * np.abs(ref_emb).max())
    assert [o["copick_run"] for o in objl] == ["TS_01"] * 6 + ["TS_02"] * 6
    assert {o["copick_voxel_size"] for o in objl} == {10.0}  # the spacing closest to the model's 10 Å
    np.testing.assert_allclose([[o["x"], o["y"], o["z"]] for o in objl[:6]], picks["TS_01"][0], atol=1e-4)


def test_clusters_are_written_back_as_copick_pick_sets(project, tmp_path):
    folder, _, picks = project
    config = str(folder / "copick.json")
    assert main(["embed", "--copick", config, "--object", "ribosome", "--out", str(tmp_path / "e.h5")]) == 0
    out = tmp_path / "c"
    assert (
        main(["cluster", str(tmp_path / "e.h5"), "--k", "2", "--no-report", "--copick", config, "--out", str(out)]) == 0
    )
    clusters = read_objl(out / "clusters_k2.xml")
    root = copick.from_file(config)
    for name in ("TS_01", "TS_02"):
        run = root.get_run(name)
        members = [o for o in clusters if o["copick_run"] == name]
        for c in (1, 2):
            mine = [o for o in members if o["label"] == c]
            sets = run.get_picks(object_name="ribosome", user_id="deepfinder-unsup", session_id=f"k2-cluster{c}")
            if not mine:
                assert not sets or not sets[0].points
                continue
            xyz, transforms = sets[0].numpy()
            expected = [[o["x"] * 10, o["y"] * 10, o["z"] * 10] for o in mine]
            np.testing.assert_allclose(xyz, expected, atol=0.05)  # the XML keeps 3 decimals of a voxel
            index = [int(round(o["obj_id"])) - (0 if name == "TS_01" else 6) for o in mine]
            want = picks[name][1][index].as_matrix()
            np.testing.assert_allclose(transforms[:, :3, :3], want, atol=1e-6)  # orientations kept
    # the annotator's own picks are untouched
    assert len(root.get_run("TS_01").get_picks(object_name="ribosome", user_id="annotator")[0].points) == 6
    assert (
        main(
            [
                "cluster",
                str(tmp_path / "e.h5"),
                "--k",
                "2",
                "--no-report",
                "--copick",
                config,
                "--out",
                str(tmp_path / "c2"),
            ]
        )
        == 1
    )
    # embeddings of picks from XML files: refused before clustering (the clusters were written, then the command
    # failed on the first object)
    from deepfinder_unsup.io.dataset import read_embeddings, write_embeddings

    emb, objl, _ = read_embeddings(tmp_path / "e.h5")
    plain = [{k: v for k, v in o.items() if not k.startswith("copick_")} for o in objl]
    write_embeddings(tmp_path / "plain.h5", emb, plain, 10.0, 40)
    out3 = tmp_path / "c3"
    assert main(["cluster", str(tmp_path / "plain.h5"), "--k", "2", "--copick", config, "--out", str(out3)]) == 1
    assert not out3.exists()
