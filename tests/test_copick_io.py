"""copick without the network: picks read into an object list (voxels at the closest spacing, DeepFinder angles,
the tomogram cached as MRC) and cluster pick sets written back, checked with copick's own API."""

from __future__ import annotations

import numpy as np
import pytest

from deepfinder_unsup.geometry import deepfinder_angles
from deepfinder_unsup.io import InputError, read_mrc
from deepfinder_unsup.io.objl import new_object

from .test_copick import project  # noqa: F401  (the fixture: two runs, spacings 10 and 20 Å, rotated picks)

copick = pytest.importorskip("copick")


def test_picks_are_voxels_of_the_closest_spacing_with_their_rotation(project, tmp_path):  # noqa: F811
    from deepfinder_unsup.io.copick_project import read_copick_picks

    folder, volumes, picks = project
    objl, tomograms = read_copick_picks(folder / "copick.json", "ribosome", tmp_path / "cache", voxel_size=12.0)
    assert [o["copick_run"] for o in objl] == ["TS_01"] * 6 + ["TS_02"] * 6
    assert [o["tomo_idx"] for o in objl] == [0] * 6 + [1] * 6 and [o["obj_id"] for o in objl] == list(range(12))
    assert {(o["label"], o["copick_object"], o["copick_voxel_size"]) for o in objl} == {(1, "ribosome", 10.0)}
    assert [o["tomo_name"] for o in objl[5:7]] == ["TS_01", "TS_02"]
    for run, part in (("TS_01", objl[:6]), ("TS_02", objl[6:])):
        xyz, rots = picks[run]
        np.testing.assert_allclose([[o["x"], o["y"], o["z"]] for o in part], xyz, atol=1e-4)
        expected = np.array([deepfinder_angles(r) for r in rots], float).reshape(6, 3)
        np.testing.assert_allclose([[o["phi"], o["the"], o["psi"]] for o in part], expected, atol=1e-3)
    for path, run in zip(tomograms, ("TS_01", "TS_02")):
        vol, vs = read_mrc(path)
        assert path.endswith(f"{run}_wbp_10A.mrc") and vs == 10.0
        np.testing.assert_array_equal(vol, volumes[run])
    coarse, _ = read_copick_picks(folder / "copick.json", "ribosome", tmp_path / "c2", voxel_size=18.0, runs=["TS_02"])
    assert len(coarse) == 6 and {o["copick_voxel_size"] for o in coarse} == {20.0}
    np.testing.assert_allclose(coarse[0]["x"], picks["TS_02"][0][0][0] / 2, atol=1e-4)


def test_reading_picks_names_what_is_missing(project, tmp_path):  # noqa: F811
    from deepfinder_unsup.io.copick_project import read_copick_picks

    folder, _, _ = project
    config = folder / "copick.json"
    with pytest.raises(InputError, match=r"copick.json: no picks of 'ribosome' by user nobody in the selected runs"):
        read_copick_picks(config, "ribosome", tmp_path, user_id="nobody")
    with pytest.raises(InputError, match=r"copick run TS_01: no tomogram of type denoised at 10 Å"):
        read_copick_picks(config, "ribosome", tmp_path, tomo_type="denoised")
    with pytest.raises(FileNotFoundError, match="nope.json: copick configuration not found"):
        read_copick_picks(tmp_path / "nope.json", "ribosome", tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not a usable copick configuration"):
        read_copick_picks(tmp_path / "bad.json", "ribosome", tmp_path)


def test_clusters_become_one_pick_set_per_run_and_cluster(project, tmp_path):  # noqa: F811
    from deepfinder_unsup.io.copick_project import read_copick_picks, write_copick_clusters

    folder, _, picks = project
    config = folder / "copick.json"
    objl, _ = read_copick_picks(config, "ribosome", tmp_path / "cache")
    clusters = np.array([1, 2] * 6)
    written = write_copick_clusters(config, objl, clusters, k=2)
    assert written == [(run, f"k2-cluster{c}", 3) for run in ("TS_01", "TS_02") for c in (1, 2)]
    root = copick.from_file(str(config))
    run = root.get_run("TS_02")
    (pick_set,) = run.get_picks(object_name="ribosome", user_id="deepfinder-unsup", session_id="k2-cluster2")
    xyz, rots = picks["TS_02"]
    got = np.array([[p.location.x, p.location.y, p.location.z] for p in pick_set.points])
    np.testing.assert_allclose(got, 10.0 * xyz[1::2], atol=1e-3)  # Å again
    for point, rot in zip(pick_set.points, rots[1::2]):
        np.testing.assert_allclose(np.asarray(point.transformation)[:3, :3], rot.as_matrix(), atol=1e-5)
    with pytest.raises(FileExistsError, match="TS_01 already has picks deepfinder-unsup/k2-cluster1"):
        write_copick_clusters(config, objl, clusters, k=2)
    assert len(write_copick_clusters(config, objl, 3 - clusters, k=2, overwrite=True)) == 4
    with pytest.raises(InputError, match="object 0 of the embeddings did not come from a copick project"):
        write_copick_clusters(config, [new_object(1, 1, 2, 3)], np.array([1]), k=2)
    stray = [dict(objl[0], copick_run="TS_99")]
    with pytest.raises(InputError, match="run 'TS_99' is not in the project"):
        write_copick_clusters(config, stray, np.array([1]), k=3)


def test_picks_are_read_by_object_user_and_session(project, tmp_path):  # noqa: F811
    """A pick set written by one user and session is read alone when asked for by both, in every run that has
    it (a run without it is passed over, not the end); another object's name finds nothing."""
    from deepfinder_unsup.io.copick_project import read_copick_picks, write_copick_clusters

    folder, _, _ = project
    config = folder / "copick.json"
    objl, _ = read_copick_picks(config, "ribosome", tmp_path / "cache")
    clusters = np.array([1] * 6 + [1, 2, 1, 2, 1, 2])  # cluster 2 in TS_02 only
    write_copick_clusters(config, objl, clusters, k=2)
    mine, _ = read_copick_picks(
        config, "ribosome", tmp_path / "c", user_id="deepfinder-unsup", session_id="k2-cluster2"
    )
    assert [o["copick_run"] for o in mine] == ["TS_02"] * 3
    np.testing.assert_allclose([o["x"] for o in mine], [o["x"] for o in objl[7::2]], atol=1e-4)
    ones, _ = read_copick_picks(
        config, "ribosome", tmp_path / "c", user_id="deepfinder-unsup", session_id="k2-cluster1"
    )
    assert [o["copick_run"] for o in ones] == ["TS_01"] * 6 + ["TS_02"] * 3
    with pytest.raises(InputError, match=r"copick.json: no picks of 'proteasome'"):
        read_copick_picks(config, "proteasome", tmp_path / "c")
