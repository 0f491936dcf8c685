"""MRC, SHREC, RELION STAR and the package's HDF5 files: round trips and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepfinder_unsup.io import (
    InputError,
    read_dataset,
    read_embedding_slices,
    read_embeddings,
    read_mrc,
    read_objl,
    read_shrec_locations,
    read_shrec_model,
    read_star,
    write_dataset,
    write_embeddings,
    write_mrc,
    write_shrec_locations,
    write_star,
)
from deepfinder_unsup.io.objl import new_object

from .conftest import shared_file


# -- MRC -----------------------------------------------------------------------------------------------------
def test_mrc_round_trip_keeps_voxel_size_and_axes(tmp_path, rng):
    vol = rng.standard_normal((6, 7, 8)).astype(np.float32)
    write_mrc(vol, tmp_path / "v.mrc", voxel_size=13.68)
    data, vs = read_mrc(tmp_path / "v.mrc")
    assert vs == pytest.approx(13.68, abs=1e-3) and data.shape == (6, 7, 8)
    np.testing.assert_array_equal(data, vol)
    mm, _ = read_mrc(tmp_path / "v.mrc", mmap=True)
    assert isinstance(mm, np.memmap) and float(mm[3, 4, 5]) == float(vol[3, 4, 5])


def _write_in_axis_order(path, vol_zyx, voxel_size, mapc, mapr, maps):
    """Store a [z, y, x] volume as an MRC file whose columns, rows and sections run along X/Y/Z axes mapc, mapr,
    maps (the data transposed by numpy here, independently of the reader's code)."""
    import mrcfile

    axis_of_zyx = {3: 0, 2: 1, 1: 2}  # X/Y/Z axis number -> its index in the [z, y, x] array
    stored = np.ascontiguousarray(vol_zyx.transpose(axis_of_zyx[maps], axis_of_zyx[mapr], axis_of_zyx[mapc]))
    with mrcfile.new(path) as m:
        m.set_data(stored)
        m.voxel_size = voxel_size
        m.header.mapc, m.header.mapr, m.header.maps = mapc, mapr, maps


@pytest.mark.parametrize("order", [(3, 2, 1), (2, 3, 1), (1, 3, 2)])
def test_mrc_in_another_axis_order_reads_as_z_y_x(tmp_path, rng, order):
    """MRC2014 allows any axis order (mapc, mapr, maps); read as stored, the volume would come back mirrored."""
    from deepfinder_unsup.extract import extract_subtomograms
    from deepfinder_unsup.io.mrc import mapped_mrc, read_mrc_geometry, read_mrc_size

    vol = rng.standard_normal((20, 24, 28)).astype(np.float32)  # z, y, x all different
    write_mrc(vol, tmp_path / "standard.mrc", voxel_size=10.0)
    _write_in_axis_order(tmp_path / "other.mrc", vol, 10.0, *order)
    np.testing.assert_array_equal(read_mrc(tmp_path / "other.mrc")[0], vol)
    with mapped_mrc(tmp_path / "other.mrc") as (mapped, _):
        assert mapped.shape == (20, 24, 28) and float(mapped[3, 5, 7]) == float(vol[3, 5, 7])
    assert read_mrc_geometry(tmp_path / "other.mrc") == ((28, 24, 20), pytest.approx(10.0))
    assert read_mrc_size(tmp_path / "other.mrc") == (28, 24, 20)
    pick = [new_object(1, 14, 11, 9, tomo_idx=0)]
    boxes = [extract_subtomograms([tmp_path / f], pick, box_size=8)[0] for f in ("standard.mrc", "other.mrc")]
    np.testing.assert_array_equal(boxes[0], boxes[1])


def test_mrc_axis_order_that_is_no_permutation_is_named(tmp_path):
    _write_in_axis_order(tmp_path / "bad_axes.mrc", np.zeros((4, 4, 4), np.float32), 10.0, 1, 2, 3)
    import mrcfile

    with mrcfile.open(tmp_path / "bad_axes.mrc", mode="r+") as m:
        m.header.maps = 1
    with pytest.raises(InputError, match=r"bad_axes\.mrc: header axis order mapc, mapr, maps = 1, 2, 1"):
        read_mrc(tmp_path / "bad_axes.mrc")


def test_mrc_zero_voxel_size_is_an_error_unless_given(tmp_path):
    import mrcfile

    with mrcfile.new(tmp_path / "df.mrc") as m:  # as DeepFinder writes: voxel size left 0
        m.set_data(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match=r"df\.mrc: header voxel size is 0"):
        read_mrc(tmp_path / "df.mrc")
    assert read_mrc(tmp_path / "df.mrc", voxel_size=10.0)[1] == 10.0


def test_mrc_never_overwrites_and_corrupt_file_is_named(tmp_path):
    write_mrc(np.ones((2, 2, 2)), tmp_path / "a.mrc", 10.0)
    with pytest.raises(FileExistsError, match="a.mrc"):
        write_mrc(np.zeros((2, 2, 2)), tmp_path / "a.mrc", 10.0)
    assert read_mrc(tmp_path / "a.mrc")[0].max() == 1.0
    (tmp_path / "bad.mrc").write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match=r"bad\.mrc: not a readable MRC"):
        read_mrc(tmp_path / "bad.mrc")


def test_refused_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError):
        write_mrc(np.ones((2, 2)), tmp_path / "flat.mrc", 10.0)  # 2-D: refused before any file appears
    assert list(tmp_path.iterdir()) == []


# -- SHREC ---------------------------------------------------------------------------------------------------
def test_shrec19_locations_of_model_9():
    objl = read_shrec_locations(shared_file("deepfinder/examples/particle_locations_model_9.txt"))
    assert len(objl) == 2540
    first = objl[0]
    assert first["label"] == 7 and first["pdb_id"] == "3d2f"  # SHREC'21 id of 3d2f
    assert (first["x"], first["y"], first["z"]) == (180.0, 480.0, 118.0)
    assert (first["phi"], first["the"], first["psi"]) == (-45.0, 81.0, -72.0)
    assert {o["label"] for o in objl if o["pdb_id"] == "4b4t"} == {16}


def test_shrec21_layout_with_nan_angles_round_trip(tmp_path):
    folder = tmp_path / "model_3"
    folder.mkdir()
    (folder / "particle_locations.txt").write_text(
        "4V94 100 120 50 10 20 30\nvesicle 30 40 50 NaN NaN NaN\nfiducial 5 6 7 nan nan nan\n"
    )
    write_mrc(np.zeros((8, 8, 8)), folder / "reconstruction.mrc", 10.0)
    tomo, objl = read_shrec_model(folder)
    assert tomo.name == "reconstruction.mrc"
    assert [o["label"] for o in objl] == [1, 14, 15]
    assert objl[1]["phi"] is None and objl[0]["psi"] == 30.0
    assert {o["tomo_idx"] for o in objl} == {0} and {o["tomo_idx"] for o in read_shrec_model(folder, 3)[1]} == {3}
    write_shrec_locations(objl, tmp_path / "again.txt")
    again = read_shrec_locations(tmp_path / "again.txt")
    assert [(o["label"], o["x"], o["phi"]) for o in again] == [(o["label"], o["x"], o["phi"]) for o in objl]
    assert (tmp_path / "again.txt").read_text().startswith("4V94 100.000")  # the name as the file wrote it
    with pytest.raises(FileExistsError, match="again.txt"):
        write_shrec_locations(objl[:1], tmp_path / "again.txt")
    write_shrec_locations(objl[:1], tmp_path / "again.txt", overwrite=True)
    assert len(read_shrec_locations(tmp_path / "again.txt")) == 1


def test_shrec_model_folder_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_9: SHREC model folder not found"):
        read_shrec_model(tmp_path / "model_9")
    folder = tmp_path / "model_1"
    folder.mkdir()
    with pytest.raises(InputError, match=r"model_1: no reconstruction\*\.mrc tomogram in this SHREC model folder"):
        read_shrec_model(folder)
    write_mrc(np.zeros((4, 4, 4)), folder / "reconstruction.mrc", 10.0)
    with pytest.raises(InputError, match=r"model_1: no particle_locations\*\.txt in this SHREC model folder"):
        read_shrec_model(folder)


def test_shrec_bad_line_is_named(tmp_path):
    (tmp_path / "p.txt").write_text("1bxn 1 2 3 0 0 0\nxyz9 1 2 3 0 0 0\n")
    with pytest.raises(InputError, match=r"p\.txt: line 2: unknown SHREC class 'xyz9'"):
        read_shrec_locations(tmp_path / "p.txt")


def test_shrec_lines_comments_fields_and_angles(tmp_path):
    """Comments and blank lines are skipped (not the end of the file); 4 fields mean no angles, 5 are an error;
    one NaN angle of three means no orientation; an infinite angle is refused; obj_id is the 0-based line
    number and tomo_idx the one asked for. Objects without a pdb_id are written by SHREC'21 name or class id."""
    (tmp_path / "p.txt").write_text("# header\n\n4cr2 1 2 3\n# note\n1bxn 4 5 6 10 NaN 30\n5mrc 7 8 9 1 2 3\n")
    objl = read_shrec_locations(tmp_path / "p.txt", tomo_idx=4)
    assert [(o["label"], o["obj_id"], o["tomo_idx"]) for o in objl] == [(2, 2, 4), (4, 4, 4), (13, 5, 4)]
    assert objl[0]["phi"] is None and objl[1]["phi"] is None and objl[1]["psi"] is None
    assert (objl[2]["phi"], objl[2]["the"], objl[2]["psi"]) == (1.0, 2.0, 3.0)
    (tmp_path / "five.txt").write_text("4cr2 1 2 3 4\n")
    with pytest.raises(InputError, match=r"five\.txt: line 1: expected 'PDBID x y z \[a1 a2 a3\]', got 5 fields"):
        read_shrec_locations(tmp_path / "five.txt")
    (tmp_path / "inf.txt").write_text("4cr2 1 2 3 0 0 inf\n")
    with pytest.raises(InputError, match=r"inf\.txt: line 1: coordinates must be finite"):
        read_shrec_locations(tmp_path / "inf.txt")
    with pytest.raises(FileNotFoundError, match="SHREC particle_locations file"):
        read_shrec_locations(tmp_path / "missing.txt")
    written = write_shrec_locations(
        [new_object(13, 1, 2, 3), new_object(42, 4, 5, 6, phi=1.0, the=2.0, psi=3.0)], tmp_path / "w.txt"
    )
    assert written.read_text() == "5mrc 1.000 2.000 3.000 NaN NaN NaN\nclass42 4.000 5.000 6.000 1.0000 2.0000 3.0000\n"


# -- RELION STAR ---------------------------------------------------------------------------------------------
def _picks():
    return [
        new_object(2, 10.5, 20.0, 30.25, tomo_idx=0, phi=10.0, the=40.0, psi=-70.0),
        new_object(5, 100.0, 50.0, 8.0, tomo_idx=1, phi=-120.0, the=100.0, psi=15.0),
    ]


def test_relion3_star_round_trip(tmp_path):
    write_star(_picks(), tmp_path / "p.star", tomo_names=["TS_01", "TS_02"])
    back = read_star(tmp_path / "p.star")
    for a, b in zip(_picks(), back):
        assert (b["label"], b["tomo_idx"]) == (a["label"], a["tomo_idx"])
        np.testing.assert_allclose([b["x"], b["y"], b["z"]], [a["x"], a["y"], a["z"]])
        np.testing.assert_allclose([b["phi"], b["the"], b["psi"]], [a["phi"], a["the"], a["psi"]], atol=1e-6)
    assert back[1]["tomo_name"] == "TS_02"


def test_relion5_centred_angstrom_coordinates(tmp_path):
    size, pixel = (200, 180, 60), 13.68
    write_star(_picks(), tmp_path / "p5.star", relion5=True, tomogram_size=size, pixel_size=pixel)
    import starfile

    table = starfile.read(tmp_path / "p5.star")
    assert table["rlnCenteredCoordinateXAngst"][0] == pytest.approx((10.5 - 100) * pixel)
    with pytest.raises(InputError, match="p5.star: RELION 5 centred coordinates"):
        read_star(tmp_path / "p5.star")
    back = read_star(tmp_path / "p5.star", tomogram_size=size, pixel_size=pixel)
    np.testing.assert_allclose([back[0]["x"], back[0]["y"], back[0]["z"]], [10.5, 20.0, 30.25])


def test_relion_angles_describe_the_same_rotation():
    from scipy.spatial.transform import Rotation

    from deepfinder_unsup.geometry import (
        deepfinder_to_relion_angles,
        relion_to_deepfinder_angles,
        rotation_from_deepfinder_angles,
    )

    zxz = np.array([[10.0, 40.0, -70.0], [-120.0, 100.0, 15.0]])
    zyz = deepfinder_to_relion_angles(zxz)
    active = rotation_from_deepfinder_angles(zxz[:, 0], zxz[:, 1], zxz[:, 2]).as_matrix()
    relion = Rotation.from_euler("ZYZ", zyz, degrees=True).as_matrix()
    np.testing.assert_allclose(relion, np.transpose(active, (0, 2, 1)), atol=1e-12)  # passive = inverse
    np.testing.assert_allclose(relion_to_deepfinder_angles(zyz), zxz, atol=1e-9)


# -- HDF5 files ----------------------------------------------------------------------------------------------
def test_dataset_and_embeddings_round_trip(tmp_path, rng):
    vols = rng.standard_normal((3, 8, 8, 8)).astype(np.float32)
    objl = [new_object(i % 2, 4, 4, 4, obj_id=i, extra_key="kept") for i in range(3)]
    write_dataset(tmp_path / "d.h5", vols, objl, 10.0, class_names={0: "negative", 1: "ring"})
    ds = read_dataset(tmp_path / "d.h5")
    np.testing.assert_array_equal(ds.subtomograms, vols)
    assert ds.objl == objl and ds.voxel_size == 10.0 and ds.class_names == {0: "negative", 1: "ring"}
    assert ds.attrs["box_size"] == 8 and "command" in ds.attrs
    emb = rng.standard_normal((3, 32)).astype(np.float32)
    write_embeddings(tmp_path / "e.h5", emb, objl, 10.0, 8)
    e2, o2, attrs = read_embeddings(tmp_path / "e.h5")
    np.testing.assert_array_equal(e2, emb)
    assert o2 == objl
    with pytest.raises(InputError, match="d.h5: not a deepfinder-unsup embeddings file"):
        read_embeddings(tmp_path / "d.h5")
    from pathlib import Path

    numpy_objl = [new_object(1, 4, 4, 4, n=np.int64(3), score=np.float32(0.5), shift=np.arange(2), src=Path("a"))]
    write_dataset(tmp_path / "n.h5", vols[:1], numpy_objl, 10.0, extra_attrs={"sizes": np.array([1, 2])})
    ds = read_dataset(tmp_path / "n.h5")
    assert ds.objl[0] == new_object(1, 4, 4, 4, n=3, score=0.5, shift=[0, 1], src="a")
    assert type(ds.objl[0]["n"]) is int and json.loads(ds.attrs["sizes"]) == [1, 2]
    with pytest.raises(FileNotFoundError, match="nothing.h5: data set file not found"):
        read_dataset(tmp_path / "nothing.h5")
    import h5py

    with h5py.File(tmp_path / "d.h5", "r+") as h5:
        del h5["subtomograms"]
    with pytest.raises(InputError, match=r"d\.h5: the sub-tomograms cannot be read \("):
        read_dataset(tmp_path / "d.h5")


def test_dataset_file_layout_extra_attributes_and_overwrite(tmp_path, rng):
    """float32 whatever comes in, one chunk per sub-tomogram (reading one box reads one chunk), provenance
    extras kept (scalars as they are, the rest as JSON), an existing file replaced only with ``overwrite``."""
    import h5py

    vols = rng.standard_normal((2, 6, 6, 6))  # float64
    objl = [new_object(1, 3, 3, 3), new_object(2, 3, 3, 3)]
    write_dataset(tmp_path / "d.h5", vols, objl, 10.0, extra_attrs={"seed": 7, "simulator": {"snr": [0.1, 1.0]}})
    with h5py.File(tmp_path / "d.h5") as h5:
        assert h5["subtomograms"].dtype == np.float32 and h5["subtomograms"].chunks == (1, 6, 6, 6)
    ds = read_dataset(tmp_path / "d.h5")
    np.testing.assert_array_equal(ds.subtomograms, vols.astype(np.float32))
    assert ds.attrs["seed"] == 7 and json.loads(ds.attrs["simulator"]) == {"snr": [0.1, 1.0]}
    with pytest.raises(FileExistsError, match="d.h5"):
        write_dataset(tmp_path / "d.h5", vols[:1], objl[:1], 10.0)
    write_dataset(tmp_path / "d.h5", vols[:1], objl[:1], 10.0, overwrite=True)
    assert len(read_dataset(tmp_path / "d.h5").subtomograms) == 1
    with pytest.raises(InputError, match=r"bad.h5: sub-tomograms must have shape \(N, B, B, B\), got \(2, 6, 6, 5\)"):
        write_dataset(tmp_path / "bad.h5", vols[..., :5], objl, 10.0)
    with pytest.raises(InputError, match="bad.h5: 2 sub-tomograms but 1 objects"):
        write_dataset(tmp_path / "bad.h5", vols, objl[:1], 10.0)
    assert not (tmp_path / "bad.h5").exists()


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from deepfinder_unsup.io import atomic_path

    target = tmp_path / "keep.txt"
    target.write_text("original")
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# -- RELION 4/5 conventions (src/jaz/tomography/particle_set.cpp) -------------------------------------------------
def relion_euler_matrix(rot, tilt, psi):
    """RELION's Euler_angles2matrix (src/euler.cpp), written out: an independent reference for the reader."""
    a, b, g = np.radians([rot, tilt, psi])
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array(
        [
            [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
            [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
            [sc, ss, cb],
        ]
    )


RELION5_PARTICLES = """
# version 50001

data_optics

loop_
_rlnOpticsGroup #1
_rlnOpticsGroupName #2
_rlnTomoTiltSeriesPixelSize #3
_rlnImagePixelSize #4
1 optics1 1.350000 10.800000

# version 50001

data_particles

loop_
_rlnTomoName #1
_rlnTomoParticleName #2
_rlnCenteredCoordinateXAngst #3
_rlnCenteredCoordinateYAngst #4
_rlnCenteredCoordinateZAngst #5
_rlnOriginXAngst #6
_rlnOriginYAngst #7
_rlnOriginZAngst #8
_rlnTomoSubtomogramRot #9
_rlnTomoSubtomogramTilt #10
_rlnTomoSubtomogramPsi #11
_rlnAngleRot #12
_rlnAngleTilt #13
_rlnAnglePsi #14
_rlnOpticsGroup #15
TS_01 TS_01/1 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000 0.000000 0.0 0.0 0.0 1
TS_01 TS_01/2 108.000000 -216.000000 54.000000 10.800000 0.000000 0.000000 90.000000 0.000000 0.000000 0.0 0.0 0.0 1
TS_02 TS_02/3 -540.000000 21.600000 -10.800000 0.000000 0.000000 0.000000 30.0 40.0 50.0 -20.0 70.0 110.0 1
"""


@pytest.fixture
def relion5_project(tmp_path):
    """Two tomograms binned 8x (10.8 Å voxels from 1.35 Å tilt-series pixels) of different sizes, and RELION 5
    particles (columns and layout as RELION 5's refine jobs write them: optics and particles blocks)."""
    write_mrc(np.zeros((40, 100, 120), np.float32), tmp_path / "TS_01.mrc", 10.8)
    write_mrc(np.zeros((30, 64, 80), np.float32), tmp_path / "TS_02.mrc", 10.8)
    (tmp_path / "particles.star").write_text(RELION5_PARTICLES)
    return tmp_path


def test_relion5_positions_follow_relions_getposition(relion5_project):
    from deepfinder_unsup.pipeline import read_star_picks

    d = relion5_project
    objl = read_star_picks(d / "particles.star", [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")])
    xyz = np.array([[o["x"], o["y"], o["z"]] for o in objl])
    # particle 1: the tomogram centre (size / 2 in voxels, x y z)
    np.testing.assert_allclose(xyz[0], [60.0, 50.0, 20.0])
    # particle 2: centred Å / 10.8 + centre, minus A_sub (origin) / 10.8 with A_sub = Euler(90, 0, 0)
    origin = relion_euler_matrix(90, 0, 0) @ np.array([10.8, 0, 0])
    np.testing.assert_allclose(xyz[1], np.array([10, -20, 5]) + [60, 50, 20] - origin / 10.8, atol=1e-9)
    assert origin[1] == pytest.approx(-10.8)  # RELION's matrix: the shift lands on -y, so y grows by one voxel
    # particle 3: the other tomogram's own centre
    np.testing.assert_allclose(xyz[2], np.array([-50, 2, -1]) + [40, 32, 15])
    assert [o["tomo_idx"] for o in objl] == [0, 0, 1]


def test_relion_orientation_is_the_subtomogram_rotation_times_the_particles(relion5_project):
    from deepfinder_unsup.geometry import rotation_from_deepfinder_angles
    from deepfinder_unsup.pipeline import read_star_picks

    d = relion5_project
    objl = read_star_picks(d / "particles.star", [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")])
    o = objl[2]
    got = rotation_from_deepfinder_angles(o["phi"], o["the"], o["psi"]).as_matrix()
    want = relion_euler_matrix(30, 40, 50) @ relion_euler_matrix(-20, 70, 110)
    np.testing.assert_allclose(got, want, atol=1e-9)  # DeepFinder's active matrix is RELION's A_sub A_part
    only_sub = objl[1]
    got = rotation_from_deepfinder_angles(only_sub["phi"], only_sub["the"], only_sub["psi"]).as_matrix()
    np.testing.assert_allclose(got, relion_euler_matrix(90, 0, 0), atol=1e-9)


def test_relion4_tilt_series_pixels_are_binned_to_tomogram_voxels(tmp_path):
    from deepfinder_unsup.pipeline import read_star_picks

    write_mrc(np.zeros((40, 100, 120), np.float32), tmp_path / "TS_01.mrc", 10.8)
    (tmp_path / "p.star").write_text(
        "data_optics\nloop_\n_rlnOpticsGroup #1\n_rlnTomoTiltSeriesPixelSize #2\n1 1.35\n\n"
        "data_particles\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n_rlnCoordinateZ #4\n"
        "_rlnOpticsGroup #5\nTS_01 800 400 160 1\n"
    )
    objl = read_star_picks(tmp_path / "p.star", [str(tmp_path / "TS_01.mrc")])
    assert [objl[0]["x"], objl[0]["y"], objl[0]["z"]] == pytest.approx([100.0, 50.0, 20.0])  # 1.35 / 10.8 = 1/8
    with pytest.raises(InputError, match="RELION 4 coordinates are tilt-series pixels"):
        read_star(tmp_path / "p.star")  # no tomogram voxel size: refused, not silently wrong


def test_relion4_optics_groups_give_each_particle_its_pixel_size(tmp_path):
    """Two optics groups (1.35 and 2.7 Å tilt-series pixels): each particle is binned by its own group's size;
    without group columns the first size applies to all; a particle of a group the optics table lacks is refused."""
    from deepfinder_unsup.io.star import read_star

    geometry = {"TS_01": ((120, 100, 40), 10.8)}
    optics = "data_optics\nloop_\n_rlnOpticsGroup #1\n_rlnTomoTiltSeriesPixelSize #2\n1 1.35\n2 2.7\n\n"
    particles = "data_particles\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n_rlnCoordinateZ #4\n"
    (tmp_path / "p.star").write_text(
        optics + particles + "_rlnOpticsGroup #5\nTS_01 800 400 160 1\nTS_01 400 200 80 2\n"
    )
    objl = read_star(tmp_path / "p.star", geometry=geometry)
    np.testing.assert_allclose([[o["x"], o["y"], o["z"]] for o in objl], [[100, 50, 20], [100, 50, 20]])
    (tmp_path / "one.star").write_text(optics + particles + "TS_01 800 400 160\n")  # no group column
    assert read_star(tmp_path / "one.star", geometry=geometry)[0]["x"] == pytest.approx(100)
    no_group = optics.replace(
        "_rlnOpticsGroup #1\n_rlnTomoTiltSeriesPixelSize #2\n1 1.35\n2 2.7", "_rlnTomoTiltSeriesPixelSize #1\n2.7"
    )
    (tmp_path / "two.star").write_text(no_group + particles + "_rlnOpticsGroup #5\nTS_01 400 200 80 1\n")
    assert read_star(tmp_path / "two.star", geometry=geometry)[0]["x"] == pytest.approx(100)
    (tmp_path / "q.star").write_text(optics + particles + "_rlnOpticsGroup #5\nTS_01 800 400 160 3\n")
    with pytest.raises(InputError, match=r"q\.star: optics group 3 of a particle is not in the optics table"):
        read_star(tmp_path / "q.star", geometry=geometry)
    bad_size = optics.replace("2 2.7", "2 none")
    (tmp_path / "r.star").write_text(bad_size + particles + "_rlnOpticsGroup #5\nTS_01 800 400 160 1\n")
    with pytest.raises(InputError, match=r"r\.star: row 2: rlnTomoTiltSeriesPixelSize must be a finite number"):
        read_star(tmp_path / "r.star", geometry=geometry)


def test_star_origins_and_classes_are_checked_by_row(tmp_path):
    """Origins in pixels (RELION 3.0) are read as voxels and must be numbers; origins in Å need a voxel size;
    class numbers must be integers within int32, the first bad row named."""
    from deepfinder_unsup.io.star import read_star

    head = "data_particles\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n"
    (tmp_path / "o.star").write_text(head + "_rlnOriginX #4\n_rlnOriginY #5\n_rlnOriginZ #6\n10 20 30 1 2 3\n")
    assert [[o["x"], o["y"], o["z"]] for o in read_star(tmp_path / "o.star")] == [[9, 18, 27]]
    (tmp_path / "o2.star").write_text(head + "_rlnOriginX #4\n_rlnOriginY #5\n_rlnOriginZ #6\n10 20 30 1 y 3\n")
    with pytest.raises(InputError, match=r"o2\.star: row 1: rlnOriginY must be a finite number, got 'y'"):
        read_star(tmp_path / "o2.star")
    angst = head + "_rlnOriginXAngst #4\n_rlnOriginYAngst #5\n_rlnOriginZAngst #6\n10 20 30 5 0 0\n"
    (tmp_path / "a.star").write_text(angst)
    with pytest.raises(
        InputError, match=r"^.*a\.star: rlnOriginX/Y/ZAngst need the tomogram voxel size \(--voxel-size\)$"
    ):
        read_star(tmp_path / "a.star")
    assert read_star(tmp_path / "a.star", pixel_size=5.0)[0]["x"] == pytest.approx(9)
    (tmp_path / "c.star").write_text(head + "_rlnClassNumber #4\n1 1 1 2\n1 1 1 1.5\n1 1 1 2.5\n")
    with pytest.raises(InputError, match=r"c\.star: row 2: rlnClassNumber must be an integer, got 1\.5$"):
        read_star(tmp_path / "c.star")
    (tmp_path / "big.star").write_text(head + f"_rlnClassNumber #4\n1 1 1 {2**31}\n")
    with pytest.raises(InputError, match=r"big\.star: row 1: rlnClassNumber must be an integer"):
        read_star(tmp_path / "big.star")
    (tmp_path / "max.star").write_text(head + f"_rlnClassNumber #4\n1 1 1 {2**31 - 1}\n")
    assert read_star(tmp_path / "max.star")[0]["label"] == 2**31 - 1


def test_tomograms_star_gives_sizes_and_binning(relion5_project):
    from deepfinder_unsup.io.star import read_tomograms_star

    d = relion5_project
    (d / "tomograms.star").write_text(
        "data_global\nloop_\n_rlnTomoName #1\n_rlnTomoTiltSeriesPixelSize #2\n_rlnTomoTomogramBinning #3\n"
        "_rlnTomoSizeX #4\n_rlnTomoSizeY #5\n_rlnTomoSizeZ #6\nTS_01 1.35 8.0 960 800 320\n"
    )
    assert read_tomograms_star(d / "tomograms.star") == {"TS_01": ((120.0, 100.0, 40.0), 10.8)}


def test_cluster_star_has_both_coordinate_forms_and_the_source_name(relion5_project, tmp_path):
    """Written for RELION 5 (centred Å) and RELION 3/Warp (voxels) at once; RELION 5's reading gives the picks."""
    from deepfinder_unsup.cluster import source_geometry
    from deepfinder_unsup.io.objl import new_object

    d = relion5_project
    objl = [
        new_object(1, 70.0, 30.0, 12.0, tomo_idx=0, source=str(d / "TS_01.mrc")),
        new_object(1, 10.0, 60.0, 3.0, tomo_idx=1, source=str(d / "TS_02.mrc")),
    ]
    write_star(objl, tmp_path / "c.star", geometry=source_geometry(objl))
    import starfile

    table = starfile.read(tmp_path / "c.star")
    assert list(table["rlnTomoName"]) == ["TS_01", "TS_02"]
    np.testing.assert_allclose(table["rlnCoordinateX"], [70.0, 10.0])
    np.testing.assert_allclose(table["rlnCenteredCoordinateXAngst"], [(70 - 60) * 10.8, (10 - 40) * 10.8])
    table = table.drop(columns=["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"])
    starfile.write(table, tmp_path / "centred_only.star")
    back = read_star(tmp_path / "centred_only.star", geometry=source_geometry(objl))
    np.testing.assert_allclose([[o["x"], o["y"], o["z"]] for o in back], [[70, 30, 12], [10, 60, 3]])


def test_clusters_go_back_into_the_users_own_star_file(relion5_project, tmp_path, rng):
    """Picks from a RELION 5 STAR file: each k's clusters also as that file, every table and column kept, its rows
    of the embedded picks in their order (here not the file's), rlnClassNumber = cluster."""
    import starfile

    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder, read_star_picks

    d = relion5_project
    objl = read_star_picks(d / "particles.star", [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")])
    kept = [objl[2], objl[0], objl[1]]  # the order the embeddings hold them in
    source = {"tomograms": [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")], "picks": str(d / "particles.star")}
    emb = write_embeddings(tmp_path / "e.h5", rng.normal(size=(3, 32)), kept, 10.8, 40, extra_attrs={"source": source})
    cluster_to_folder(emb, "2", tmp_path / "c", report=False)
    mine, theirs = starfile.read(tmp_path / "c" / "clusters_k2_particles.star"), starfile.read(d / "particles.star")
    assert mine["optics"].equals(theirs["optics"])
    clusters = read_objl(tmp_path / "c" / "clusters_k2.xml")
    want = theirs["particles"].iloc[[2, 0, 1]].reset_index(drop=True)
    want["rlnClassNumber"] = [o["label"] for o in clusters]
    pd.testing.assert_frame_equal(mine["particles"], want, check_dtype=False)
    plain = [{k: v for k, v in o.items() if k != "star_row"} for o in kept]  # picks from an XML list: no such file
    emb = write_embeddings(tmp_path / "x.h5", rng.normal(size=(3, 32)), plain, 10.8, 40, extra_attrs={"source": source})
    cluster_to_folder(emb, "2", tmp_path / "x", report=False)
    assert not list((tmp_path / "x").glob("*_particles.star"))


def test_a_star_file_shrunk_since_embeddings_without_its_digest_is_skipped_with_a_warning(
    relion5_project, tmp_path, rng, caplog
):
    """Embeddings written before ``embed`` recorded the STAR file's SHA-256 (session 50) cannot tell a changed file;
    one with fewer rows than the picks name failed ``cluster`` after the sweep: now its own outputs are skipped
    with the same warning as a changed file, the package's clusters written."""
    import logging

    import starfile

    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder, read_star_picks

    d = relion5_project
    objl = read_star_picks(d / "particles.star", [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")])
    source = {"tomograms": [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")], "picks": str(d / "particles.star")}
    emb = write_embeddings(tmp_path / "e.h5", rng.normal(size=(3, 32)), objl, 10.8, 40, extra_attrs={"source": source})
    tables = starfile.read(d / "particles.star")
    tables["particles"] = tables["particles"].iloc[:2]  # the third pick's row is gone
    starfile.write(tables, d / "particles.star", overwrite=True)
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        cluster_to_folder(emb, "2", tmp_path / "c", report=False)
    assert "changed since embed read the picks from it" in caplog.text
    assert not list((tmp_path / "c").glob("*_particles.star")) and (tmp_path / "c" / "clusters_k2.star").exists()


def test_rare_clusters_go_back_into_the_users_own_star_file_too(relion5_project, tmp_path, rng):
    """``cluster --rare`` on picks from a STAR file: clusters_rare_particles.star is that file's rows, with the rare
    analysis's clusters (0: in none) as rlnClassNumber, beside each k's (it had no such twin before session 50)."""
    import starfile

    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder, read_star_picks

    d = relion5_project
    objl = read_star_picks(d / "particles.star", [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")])
    kept = [objl[i % len(objl)] for i in range(40)]
    features = rng.normal(size=(40, 32)) + np.repeat([[0.0] * 32, [6.0] * 32], 20, axis=0)
    source = {"tomograms": [str(d / "TS_01.mrc"), str(d / "TS_02.mrc")], "picks": str(d / "particles.star")}
    emb = write_embeddings(tmp_path / "e.h5", features, kept, 10.8, 40, extra_attrs={"source": source})
    cluster_to_folder(emb, "2:3", tmp_path / "c", report=False, rare=True)
    mine, theirs = starfile.read(tmp_path / "c" / "clusters_rare_particles.star"), starfile.read(d / "particles.star")
    assert mine["optics"].equals(theirs["optics"])
    rare = [o["label"] for o in read_objl(tmp_path / "c" / "clusters_rare.xml")]
    assert len(set(rare)) >= 2
    want = theirs["particles"].iloc[[i % len(objl) for i in range(40)]].reset_index(drop=True)
    want["rlnClassNumber"] = rare
    pd.testing.assert_frame_equal(mine["particles"], want, check_dtype=False)
    assert {p.name for p in (tmp_path / "c").glob("*_particles.star")} == {
        "clusters_k2_particles.star",
        "clusters_k3_particles.star",
        "clusters_rare_particles.star",
    }
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "clusters_rare_particles.star").write_text("the user's own")
    with pytest.raises(FileExistsError, match="clusters_rare_particles.star: exists"):  # refused before the sweep
        cluster_to_folder(emb, "2:3", tmp_path / "d", report=False, rare=True, method="no such method")
    assert (tmp_path / "d" / "clusters_rare_particles.star").read_text() == "the user's own"


def test_star_rows_as_text_make_the_same_file_as_write_star_rows(relion5_project, tmp_path):
    """The interactive map's own-STAR download is built in the browser from these parts: joined with the clusters
    they are the file write_star_rows writes (every table, column and row), whatever the rows' order."""
    import starfile

    from deepfinder_unsup.io.star import star_rows_as_text, write_star_rows

    source = relion5_project / "particles.star"
    rows, classes = [2, 0, 1, 0], [3, 1, 2, 7]
    head, lines, tail = star_rows_as_text(source, rows)
    (tmp_path / "joined.star").write_text(head + "".join(f"{ln}\t{c}\n" for ln, c in zip(lines, classes)) + tail)
    write_star_rows(source, rows, classes, tmp_path / "written.star")
    joined, written = starfile.read(tmp_path / "joined.star"), starfile.read(tmp_path / "written.star")
    assert list(joined) == list(written) == ["optics", "particles"]
    assert joined["optics"].equals(written["optics"])
    pd.testing.assert_frame_equal(joined["particles"], written["particles"], check_dtype=False)
    with pytest.raises(InputError, match="3 particle rows; the picks name row 4"):
        star_rows_as_text(source, [3])


# -- the resumable embeddings file --------------------------------------------------------------------------------
def test_partial_embeddings_fill_in_any_order_and_finish_in_pick_order(tmp_path, rng):
    from deepfinder_unsup.io.resumable import EMBEDDED, SKIPPED, TODO, PartialEmbeddings, partial_path

    out = tmp_path / "e.h5"
    key = {"model": "abc", "n_picks": 7}
    store = PartialEmbeddings.create(out, 7, 4, 8, key)
    assert store.path == partial_path(out) == tmp_path / "e.h5.partial"
    assert (store.status() == TODO).all()
    emb = rng.standard_normal((7, 4)).astype(np.float32)
    slices = rng.standard_normal((7, 2, 8, 8)).astype(np.float16)
    rows = [{"x": float(i), "y": 0.0, "z": 0.0, "label": i} for i in range(7)]
    # the second unit first (Dask order), pick 5 skipped at the border
    store.write_unit(
        np.array([4, 5, 6]), np.array([True, False, True]), emb[[4, 6]], slices[[4, 6]], [rows[4], rows[6]]
    )
    assert store.status().tolist() == [TODO] * 4 + [EMBEDDED, SKIPPED, EMBEDDED]
    with pytest.raises(InputError, match="incomplete file"):
        read_embeddings(store.path)
    with pytest.raises(InputError, match="4 picks are still to embed"):
        store.finalize(out, 10.0, 8, {}, {})
    with pytest.raises(ValueError, match="increase"):
        store.write_unit(np.array([2, 1]), np.array([True, True]), emb[:2], slices[:2], rows[:2])
    with pytest.raises(ValueError, match="increase"):  # a pick twice in one unit
        store.write_unit(np.array([1, 1]), np.array([True, True]), emb[:2], slices[:2], rows[:2])
    rows[0] = {"x": np.float32(0.5), "y": np.int64(2), "z": 0.0, "label": 0}  # numpy scalars from the readers
    store.write_unit(np.array([0, 1, 2, 3]), np.ones(4, bool), emb[:4], slices[:4], rows[:4])
    assert store.finalize(out, 10.0, 8, {1: "a"}, {"model": "m"}) == 6
    got, objl, attrs = read_embeddings(out)
    keep = [0, 1, 2, 3, 4, 6]
    np.testing.assert_array_equal(got, emb[keep])
    assert objl[0] == {"x": 0.5, "y": 2, "z": 0.0, "label": 0} and objl[1:] == [rows[i] for i in keep[1:]]
    assert attrs["model"] == "m" and attrs["class_names"] == {1: "a"} and attrs["box_size"] == 8
    np.testing.assert_array_equal(read_embedding_slices(out), slices[keep].astype(np.float32))
    assert not store.path.exists()
    again = PartialEmbeddings.create(out, 1, 4, 8, key)
    again.write_unit(np.array([0]), np.array([True]), emb[:1], slices[:1], rows[:1])
    with pytest.raises(FileExistsError, match="e.h5"):  # the finished file is not replaced without overwrite
        again.finalize(out, 10.0, 8, {}, {})
    assert len(read_embeddings(out)[0]) == 6 and again.finalize(out, 10.0, 8, {}, {}, overwrite=True) == 1


def test_partial_embeddings_copy_block_by_block_and_keep_their_layout(tmp_path, rng, monkeypatch):
    """With blocks of 3 rows, 11 picks (every third skipped) finish in pick order through four block copies
    (and the object rows through the same blocks); the partial file says what it is, holds float32 embeddings
    and float16 slices, chunked (so a unit is written without rewriting the file), and its resume key is
    stored with sorted keys (two runs with the same settings in another order match)."""
    import h5py

    from deepfinder_unsup.io import resumable
    from deepfinder_unsup.io.resumable import PartialEmbeddings

    monkeypatch.setattr(resumable, "COPY_ROWS", 3)
    out = tmp_path / "e.h5"
    store = PartialEmbeddings.create(out, 11, 4, 6, {"model": "m", "border": "pad"})
    with h5py.File(store.path) as h5:
        assert h5.attrs["format"] == b"deepfinder-unsup partial embeddings"
        assert h5.attrs["resume_key"] == b'{"border": "pad", "model": "m"}'
        assert h5["embeddings"].dtype == np.float32 and h5["slices"].dtype == np.float16
        assert h5["status"].dtype == np.int8
        assert all(h5[name].chunks is not None for name in ("embeddings", "slices", "rows", "status"))
    emb = rng.standard_normal((11, 4)).astype(np.float32)
    slices = rng.standard_normal((11, 2, 6, 6)).astype(np.float16)
    rows = [{"x": float(i), "y": 1.0, "z": 2.0, "label": i % 3} for i in range(11)]
    kept = np.arange(11) % 3 != 1
    store.write_unit(np.arange(11), kept, emb[kept], slices[kept], [r for r, k in zip(rows, kept) if k])
    assert store.finalize(out, 10.0, 6, {}, {}) == int(kept.sum())
    got, objl, _ = read_embeddings(out)
    np.testing.assert_array_equal(got, emb[kept])
    assert objl == [r for r, k in zip(rows, kept) if k]
    np.testing.assert_array_equal(read_embedding_slices(out), slices[kept].astype(np.float32))
    with h5py.File(out) as h5:
        assert h5["slices"].compression == "gzip" and h5["embeddings"].dtype == np.float32
        assert h5["slices"].dtype == np.float16 and h5["slices"].chunks == (int(kept.sum()), 2, 6, 6)


def test_a_unit_waits_while_another_program_reads_the_partial_file(tmp_path, rng, monkeypatch):
    """HDF5 refuses to open for writing a file another process holds open (errno 11): a user's ``h5ls`` or a
    progress script reading the partial file killed the run (a flaky kill test, session 34). A unit now waits
    for the reader to let go; one that never does gets a line naming the file and --resume."""
    import subprocess
    import sys

    from deepfinder_unsup.io import resumable
    from deepfinder_unsup.io.resumable import EMBEDDED, PartialEmbeddings

    store = PartialEmbeddings.create(tmp_path / "e.h5", 2, 4, 6, {"model": "m"})
    emb, slices = rng.standard_normal((1, 4)).astype(np.float32), np.zeros((1, 2, 6, 6), np.float16)

    def reader(seconds: float) -> subprocess.Popen:
        hold = f"import h5py, sys, time; f = h5py.File({str(store.path)!r}, 'r'); print('open', flush=True); "
        proc = subprocess.Popen(
            [sys.executable, "-c", hold + f"time.sleep({seconds})"], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "open"
        return proc

    held = reader(1.5)
    store.write_unit(np.array([0]), np.array([True]), emb, slices, [{"x": 1.0}])  # waits, then writes
    held.wait(timeout=60)
    assert store.status().tolist()[0] == EMBEDDED
    monkeypatch.setattr(resumable, "LOCK_WAIT_S", 0.5)
    held = reader(30)
    try:
        with pytest.raises(InputError, match=r"e\.h5\.partial: another program has held it open .* --resume"):
            store.write_unit(np.array([1]), np.array([True]), emb, slices, [{"x": 2.0}])
    finally:
        held.kill()
        held.wait()


def test_partial_embeddings_resume_only_the_same_run(tmp_path):
    from deepfinder_unsup.io.resumable import PartialEmbeddings

    out = tmp_path / "e.h5"
    with pytest.raises(InputError, match="nothing to resume"):
        PartialEmbeddings.resume(out, {"a": 1})
    PartialEmbeddings.create(out, 3, 2, 4, {"model": "m1", "border": "pad"})
    with pytest.raises(FileExistsError, match="--resume"):
        PartialEmbeddings.create(out, 3, 2, 4, {"model": "m1"})
    with pytest.raises(InputError, match="started with other border, model"):
        PartialEmbeddings.resume(out, {"model": "m2", "border": "skip"})
    with pytest.raises(InputError, match="started with other border;"):  # a setting only one run has
        PartialEmbeddings.resume(out, {"model": "m1"})
    with pytest.raises(InputError, match="started with other tta;"):
        PartialEmbeddings.resume(out, {"model": "m1", "border": "pad", "tta": True})
    assert PartialEmbeddings.resume(out, {"border": "pad", "model": "m1"}).status().tolist() == [0, 0, 0]
    (tmp_path / "e.h5.partial").write_bytes(b"garbage")
    with pytest.raises(InputError, match="damaged partial file"):
        PartialEmbeddings.resume(out, {"model": "m1"})
    fresh = PartialEmbeddings.create(out, 2, 2, 4, {"model": "m1"}, overwrite=True)
    assert fresh.status().tolist() == [0, 0]


def test_embeddings_file_layout_is_the_documented_one(tmp_path, rng):
    """docs/formats.md: attributes, dtypes, checksums and compression of an embeddings file (format version 2),
    readable with h5py alone (text attributes as UTF-8 bytes, the object list as UTF-8 bytes)."""
    import json

    import h5py

    objl = [new_object(1, 1.5, 2.0, 3.0, obj_id=0), new_object(2, 4.0, 5.0, 6.25, obj_id=1)]
    slices = rng.standard_normal((2, 2, 8, 8))
    write_embeddings(tmp_path / "e.h5", rng.standard_normal((2, 32)), objl, 13.68, 8, {1: "a", 2: "b"}, slices=slices)
    with h5py.File(tmp_path / "e.h5", "r") as h5:
        assert h5.attrs["format"] == b"deepfinder-unsup embeddings" and h5.attrs["format_version"] == 2
        assert h5.attrs["voxel_size"] == 13.68 and h5.attrs["box_size"] == 8
        assert json.loads(h5.attrs["class_names"].decode()) == {"1": "a", "2": "b"}
        assert {"created", "command", "package_version"} <= set(h5.attrs)
        assert h5["embeddings"].dtype == np.float32 and h5["embeddings"].shape == (2, 32)
        assert h5["slices"].dtype == np.float16 and h5["slices"].compression == "gzip"
        assert all(h5[name].fletcher32 for name in ("embeddings", "slices", "objl"))
        assert json.loads(h5["objl"][()].tobytes().decode()) == objl
    with pytest.raises(InputError, match="do not match 2 objects"):
        write_embeddings(tmp_path / "f.h5", np.zeros((3, 32)), objl, 10.0, 8)
    assert not (tmp_path / "f.h5").exists()


def test_mrc_geometry_is_x_y_z_and_needs_a_voxel_size(tmp_path):
    from deepfinder_unsup.io.mrc import read_mrc_geometry, read_mrc_voxel_size

    write_mrc(np.zeros((5, 6, 7), np.float32), tmp_path / "a.mrc", 12.5)
    assert read_mrc_geometry(tmp_path / "a.mrc") == ((7, 6, 5), 12.5)
    assert read_mrc_voxel_size(tmp_path / "a.mrc") == 12.5
    import mrcfile

    with mrcfile.new(tmp_path / "zero.mrc") as m:
        m.set_data(np.zeros((4, 4, 4), np.float32))  # voxel size 0, as DeepFinder writes
    assert read_mrc_voxel_size(tmp_path / "zero.mrc") == 0.0
    with pytest.raises(InputError, match=r"zero\.mrc: header voxel size is 0"):
        read_mrc_geometry(tmp_path / "zero.mrc")
    (tmp_path / "bad.mrc").write_bytes(b"\0" * 64)
    for reader in (read_mrc_geometry, read_mrc_voxel_size):
        with pytest.raises(InputError, match=r"bad\.mrc: not a readable MRC"):
            reader(tmp_path / "bad.mrc")
        with pytest.raises(FileNotFoundError, match=r"gone\.mrc: MRC file not found"):
            reader(tmp_path / "gone.mrc")
    header = bytearray((tmp_path / "a.mrc").read_bytes()[:1024])
    (tmp_path / "header_only.mrc").write_bytes(header)  # data not there (yet): the geometry is in the header
    assert read_mrc_geometry(tmp_path / "header_only.mrc") == ((7, 6, 5), 12.5)
    header[208:212] = b"PAM "  # a wrong map ID: refused, not read leniently
    (tmp_path / "no_map_id.mrc").write_bytes(header + (tmp_path / "a.mrc").read_bytes()[1024:])
    for reader in (read_mrc_geometry, read_mrc_voxel_size):
        with pytest.raises(InputError, match=r"no_map_id\.mrc: not a readable MRC"):
            reader(tmp_path / "no_map_id.mrc")


def test_tomograms_star_without_binning_means_unbinned(tmp_path):
    from deepfinder_unsup.io.star import read_tomograms_star

    (tmp_path / "t.star").write_text(
        "data_global\nloop_\n_rlnTomoName #1\n_rlnTomoTiltSeriesPixelSize #2\n_rlnTomoSizeX #3\n_rlnTomoSizeY #4\n"
        "_rlnTomoSizeZ #5\nTS_1 2.5 400 300 100\nTS_2 1.25 800 600 200\n"
    )
    assert read_tomograms_star(tmp_path / "t.star") == {
        "TS_1": ((400.0, 300.0, 100.0), 2.5),
        "TS_2": ((800.0, 600.0, 200.0), 1.25),
    }
    (tmp_path / "u.star").write_text("data_global\nloop_\n_rlnTomoName #1\nTS_1\n")
    with pytest.raises(InputError, match=r"u\.star: no table with rlnTomoName and rlnTomoSizeX"):
        read_tomograms_star(tmp_path / "u.star")
    with pytest.raises(FileNotFoundError, match=r"v\.star: tomograms STAR file not found"):
        read_tomograms_star(tmp_path / "v.star")
    header = "data_global\nloop_\n_rlnTomoName #1\n_rlnTomoTiltSeriesPixelSize #2\n_rlnTomoSizeX #3\n_rlnTomoSizeY #4\n"
    (tmp_path / "p.star").write_text(header + "_rlnTomoSizeZ #5\nTS_1 n/a 400 300 100\n")
    with pytest.raises(InputError, match=r"p\.star: row 1: rlnTomoTiltSeriesPixelSize must be a finite number"):
        read_tomograms_star(tmp_path / "p.star")
    (tmp_path / "b.star").write_text(header + "_rlnTomoSizeZ #5\n_rlnTomoTomogramBinning #6\nTS_1 2.5 400 300 100 x\n")
    with pytest.raises(InputError, match=r"b\.star: row 1: rlnTomoTomogramBinning must be a finite number"):
        read_tomograms_star(tmp_path / "b.star")


def test_a_star_file_written_by_relion_itself(tmp_path):
    """RELION 3.1's run_data.star (tests/data/README.md): names matched to Warp-style tomogram files, origins in
    Å subtracted, angles as RELION's matrices, classes kept."""
    from pathlib import Path

    from deepfinder_unsup.geometry import rotation_from_deepfinder_angles
    from deepfinder_unsup.pipeline import read_star_picks

    star = Path(__file__).parent / "data" / "relion31_run_data_excerpt.star"
    import mrcfile

    tomos = []
    for ts in ("ts002", "ts003"):
        tomos.append(str(tmp_path / f"20220106_5991-2_L3_{ts}.mrc_8.00Apx.mrc"))
        with mrcfile.new_mmap(tomos[-1], (300, 1100, 1100), mrc_mode=2) as mrc:  # sparse: 1.4 GB not written
            mrc.voxel_size = 8.0
    objl = read_star_picks(star, tomos[::-1])  # any order: matched by name
    assert [o["tomo_idx"] for o in objl] == [1, 1, 1, 0, 0]
    assert [o["label"] for o in objl] == [1] * 5
    first = objl[0]
    np.testing.assert_allclose(
        [first["x"], first["y"], first["z"]],
        np.array([774.174, 840.787, 110.297]) - np.array([-15.82603, -22.32603, -1.32603]) / 8.0,
        atol=1e-6,
    )
    got = rotation_from_deepfinder_angles(first["phi"], first["the"], first["psi"]).as_matrix()
    np.testing.assert_allclose(got, relion_euler_matrix(129.133562, 23.037646, 11.939608), atol=1e-9)
    with pytest.raises(InputError, match="matches none"):
        read_star_picks(star, [tomos[0], str(tmp_path / "other.mrc")])


def test_embedding_slices_of_chosen_rows_in_the_order_asked(tmp_path, rng):
    """The report's galleries read a few rows: any order, repeats allowed, none at all; float32 whatever is
    stored (float16); a file without slices gives None."""
    objl = [new_object(1, i, 0, 0) for i in range(5)]
    slices = rng.standard_normal((5, 2, 6, 6)).astype(np.float16)
    path = write_embeddings(tmp_path / "e.h5", rng.standard_normal((5, 4)), objl, 10.0, 6, slices=slices)
    got = read_embedding_slices(path, [3, 0, 3])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, slices[[3, 0, 3]].astype(np.float32))
    assert read_embedding_slices(path, []).shape == (0, 2, 6, 6)
    np.testing.assert_array_equal(read_embedding_slices(path), slices.astype(np.float32))
    bare = write_embeddings(tmp_path / "bare.h5", rng.standard_normal((5, 4)), objl, 10.0, 6)
    assert read_embedding_slices(bare) is None and read_embedding_slices(bare, [1]) is None
    with pytest.raises(FileNotFoundError, match=r"gone\.h5: embeddings file not found"):
        read_embedding_slices(tmp_path / "gone.h5")


def test_damaged_or_incomplete_attributes_of_our_files_are_named(tmp_path, rng):
    """Attributes come back as plain Python values (JSON-ready); missing class names mean none; a missing or
    non-positive voxel size and a damaged object list are refused naming the file and the problem."""
    import h5py

    objl = [new_object(1, 1, 2, 3)]
    path = write_dataset(tmp_path / "d.h5", rng.standard_normal((1, 4, 4, 4)), objl, 10.0)
    ds = read_dataset(path)
    assert type(ds.attrs["box_size"]) is int and type(ds.attrs["voxel_size"]) is float
    json.dumps(ds.attrs)
    with h5py.File(path, "r+") as h5:
        del h5.attrs["class_names"]
    assert read_dataset(path).class_names == {}
    with pytest.raises(
        InputError,
        match=r"d\.h5: not a deepfinder-unsup embeddings file \(format attribute is 'deepfinder-unsup dataset'\)",
    ):
        read_embeddings(path)
    for value in (0.0, -1.0, float("nan")):
        with h5py.File(path, "r+") as h5:
            h5.attrs["voxel_size"] = value
        with pytest.raises(InputError, match=rf"d\.h5: voxel_size attribute {value} is not a positive number"):
            read_dataset(path)
    with h5py.File(path, "r+") as h5:
        del h5.attrs["voxel_size"]
    with pytest.raises(InputError, match=r"d\.h5: voxel_size attribute None is not a positive number"):
        read_dataset(path)
    path = write_dataset(tmp_path / "j.h5", rng.standard_normal((1, 4, 4, 4)), objl, 10.0)
    with h5py.File(path, "r+") as h5:
        del h5["objl"]
        h5.create_dataset("objl", data="[{not json")
    with pytest.raises(InputError, match=r"j\.h5: a damaged deepfinder-unsup dataset file \(JSONDecodeError: "):
        read_dataset(path)
    with h5py.File(path, "r+") as h5:
        h5.attrs["format_version"] = 3
    with pytest.raises(InputError, match=r"j\.h5: format_version 3, newer than this deepfinder-unsup reads \(2\)"):
        read_dataset(path)


def _write_format_1(path, embeddings, objl, class_names) -> None:
    """An embeddings file as versions before session 41 wrote it: h5py's defaults (variable-length strings in
    the global heap, a contiguous array, the object list as one variable-length string)."""
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = "deepfinder-unsup embeddings"
        h5.attrs["format_version"] = 1
        h5.attrs["voxel_size"] = 10.0
        h5.attrs["box_size"] = 40
        h5.attrs["class_names"] = json.dumps({str(k): v for k, v in class_names.items()})
        h5.attrs["command"] = "deepfinder-unsup embed"
        h5.create_dataset("objl", data=json.dumps(objl))
        h5.create_dataset("embeddings", data=embeddings)


def test_format_1_files_are_still_read(tmp_path, rng):
    """Files written before format version 2 read as they did: the same numbers, objects and class names."""
    objl = [new_object(1, 1.5, 2.0, 3.0, obj_id=0), new_object(2, 4.0, 5.0, 6.25, obj_id=1)]
    emb = rng.standard_normal((2, 32)).astype(np.float32)
    _write_format_1(tmp_path / "v1.h5", emb, objl, {1: "ribosome", 2: "é"})
    got, got_objl, attrs = read_embeddings(tmp_path / "v1.h5")
    np.testing.assert_array_equal(got, emb)
    assert got_objl == objl and attrs["class_names"] == {1: "ribosome", 2: "é"}
    assert attrs["format_version"] == 1 and attrs["command"] == "deepfinder-unsup embed"


def test_h5py_errors_on_damaged_attributes_are_named(tmp_path, rng, monkeypatch):
    """h5py raises RuntimeError when it cannot iterate over damaged attributes ("ran off end of input buffer",
    found by benchmarks/fuzz_readers.py on format-1 files), and a damaged attribute name comes back as bytes:
    both are one InputError naming the file, not a traceback."""
    import h5py

    objl = [new_object(1, 1.5, 2.0, 3.0, obj_id=0)]
    path = write_embeddings(tmp_path / "e.h5", rng.standard_normal((1, 4)), objl, 10.0, 40)

    def damaged_items(self):
        raise RuntimeError("Error iterating over attributes (ran off end of input buffer while decoding)")

    with monkeypatch.context() as m:
        m.setattr(h5py.AttributeManager, "items", damaged_items)
        with pytest.raises(InputError, match=r"e\.h5: a damaged .*ran off end of input buffer"):
            read_embeddings(path)
    real_items = h5py.AttributeManager.items
    monkeypatch.setattr(h5py.AttributeManager, "items", lambda self: [(b"\xe1ormat", 1), *real_items(self)])
    with pytest.raises(InputError, match=r"e\.h5: a damaged .*attribute names that are not UTF-8 text"):
        read_embeddings(path)


def _flip_byte(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_damaged_byte_of_a_format_2_file_is_an_error_never_silent(tmp_path, rng):
    """Every array chunk and the header holding the text attributes carry checksums: one changed byte in the
    embeddings, the object list or the class names is refused naming the file. (Format 1 read the same damage
    without complaint: other numbers, another object list, or libhdf5 looping forever on a damaged string.)"""
    import h5py

    objl = [new_object(1, 1.5, 2.0, 3.0, obj_id=0), new_object(2, 4.0, 5.0, 6.25, obj_id=1)]
    emb = rng.standard_normal((2, 32)).astype(np.float32)
    clean = write_embeddings(tmp_path / "clean.h5", emb, objl, 10.0, 40, {1: "ribosome", 2: "proteasome"})
    with h5py.File(clean, "r") as h5:
        chunk_offsets = {name: h5[name].id.get_chunk_info(0).byte_offset for name in ("embeddings", "objl")}
    text_offset = clean.read_bytes().index(b'{"1": "ribosome"')
    for what, offset in [*chunk_offsets.items(), ("class_names", text_offset + 7)]:
        for shift in (0, 5):
            damaged = tmp_path / f"{what}_{shift}.h5"
            damaged.write_bytes(clean.read_bytes())
            _flip_byte(damaged, offset + shift)
            with pytest.raises(InputError, match=rf"{what}_{shift}\.h5: "):
                read_embeddings(damaged)
    _write_format_1(tmp_path / "v1.h5", emb, objl, {1: "ribosome", 2: "proteasome"})
    with h5py.File(tmp_path / "v1.h5", "r") as h5:
        offset = h5["embeddings"].id.get_offset()
    _flip_byte(tmp_path / "v1.h5", offset)
    assert not np.array_equal(read_embeddings(tmp_path / "v1.h5")[0], emb)  # what format 1 did


def test_mrc_voxel_sizes_and_dtypes_at_their_limits(tmp_path, rng):
    """1 Å is a voxel size like any other; zero and negative ones are refused when writing and when given;
    a header with different x / y / z sizes is refused; an int16 file reads as float32 in memory, and the
    memory-mapped read leaves the file's own type; a missing file is named."""
    import mrcfile

    vol = rng.standard_normal((4, 5, 6)).astype(np.float32)
    write_mrc(vol, tmp_path / "one.mrc", 1.0)
    assert read_mrc(tmp_path / "one.mrc")[1] == 1.0 and read_mrc(tmp_path / "one.mrc", voxel_size=1.0)[1] == 1.0
    for bad in (0.0, -2.0):
        with pytest.raises(InputError, match=r"n\.mrc: a positive voxel size is required to write an MRC file"):
            write_mrc(vol, tmp_path / "n.mrc", bad)
        with pytest.raises(InputError, match=rf"one\.mrc: voxel size must be positive, got {bad}"):
            read_mrc(tmp_path / "one.mrc", voxel_size=bad)
    with pytest.raises(InputError, match=r"flat\.mrc: expected a 3-D volume to write, got shape \(5, 6\)"):
        write_mrc(vol[0], tmp_path / "flat.mrc", 10.0)
    with pytest.raises(FileExistsError, match="one.mrc"):
        write_mrc(vol, tmp_path / "one.mrc", 2.0)
    write_mrc(2 * vol, tmp_path / "one.mrc", 2.0, overwrite=True)
    data, vs = read_mrc(tmp_path / "one.mrc")
    assert vs == 2.0 and np.array_equal(data, 2 * vol)
    with mrcfile.new(tmp_path / "aniso.mrc") as m:
        m.set_data(np.zeros((4, 4, 4), np.float32))
        m.voxel_size = (10.0, 10.0, 12.0)
    with pytest.raises(
        InputError, match=r"aniso\.mrc: anisotropic voxel size \[10\.0, 10\.0, 12\.0\] Å is not supported"
    ):
        read_mrc(tmp_path / "aniso.mrc")
    with mrcfile.new(tmp_path / "near.mrc") as m:  # rounding in the header (cell / grid): accepted, x's size
        m.set_data(np.zeros((4, 4, 4), np.float32))
        m.voxel_size = (10.0, 10.005, 10.001)
    assert read_mrc(tmp_path / "near.mrc")[1] == pytest.approx(10.0)
    with mrcfile.new(tmp_path / "ints.mrc") as m:
        m.set_data(np.arange(64, dtype=np.int16).reshape(4, 4, 4))
        m.voxel_size = 5.0
    data, _ = read_mrc(tmp_path / "ints.mrc")
    assert data.dtype == np.float32 and data[1, 2, 3] == 27.0
    mapped, _ = read_mrc(tmp_path / "ints.mrc", mmap=True)
    assert mapped.dtype == np.int16 and not mapped.flags.writeable
    with pytest.raises(FileNotFoundError, match=r"gone\.mrc: MRC file not found"):
        read_mrc(tmp_path / "gone.mrc")


def test_object_list_attributes_are_written_as_deepfinder_writes_them(tmp_path):
    """Coordinates with three decimals, angles exactly (repr), indices and labels as integers, an integral
    cluster size as an integer unless it was a float, anything else as text."""
    from deepfinder_unsup.io import write_objl

    obj = new_object(3, 1.23456, 2, 3.5, tomo_idx=1, obj_id=7, phi=0.1, the=20, psi=-30.25, cluster_size=12)
    obj["note"] = "kept"
    write_objl([obj, new_object(1, 0, 0, 0, tomo_idx=0, obj_id=8, cluster_size=2.0)], tmp_path / "o.xml")
    text = (tmp_path / "o.xml").read_text()
    for attribute in ('x="1.235"', 'y="2.000"', 'z="3.500"', 'phi="0.1"', 'the="20.0"', 'psi="-30.25"'):
        assert attribute in text
    for attribute in ('tomo_idx="1"', 'obj_id="7"', 'class_label="3"', 'cluster_size="12"', 'note="kept"'):
        assert attribute in text
    assert 'cluster_size="2.0"' in text


def test_publishing_a_folder_moves_everything_or_nothing(tmp_path, monkeypatch):
    """Every staged file lands at its relative place (sub-folders made), the ``last`` one after the others, with
    the list of them (outputs.txt); an existing target refuses the whole set before anything moves unless
    ``overwrite``."""
    import os
    from pathlib import Path

    from deepfinder_unsup.io.files import publish_folder

    staging, out = tmp_path / "stage", tmp_path / "out"
    (staging / "figures" / "deep").mkdir(parents=True)
    for name in ("report.html", "a.csv", "figures/deep/f.png", "z.json"):
        (staging / name).write_text(name)
    moved = []
    real_replace = os.replace

    def recording_replace(src, dst):
        moved.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    targets = publish_folder(staging, out, last="report.html", manifest="outputs.txt")
    written = ["a.csv", "figures/deep/f.png", "outputs.txt", "report.html", "z.json"]
    assert moved[-1] == "report.html" and sorted(moved) == ["a.csv", "f.png", "outputs.txt", "report.html", "z.json"]
    assert sorted(t.relative_to(out).as_posix() for t in targets) == written
    assert (out / "figures" / "deep" / "f.png").read_text() == "figures/deep/f.png"
    assert [n for n in (out / "outputs.txt").read_text().splitlines() if not n.startswith("#")] == written
    (staging / "a.csv").write_text("new")
    (staging / "b.csv").write_text("b")
    with pytest.raises(FileExistsError, match=r"a\.csv: file exists; pass overwrite=True \(CLI: --overwrite\)"):
        publish_folder(staging, out, manifest="outputs.txt")
    assert not (out / "b.csv").exists() and (out / "a.csv").read_text() == "a.csv"


def test_an_overwritten_folder_loses_the_earlier_runs_files_and_none_of_the_users(tmp_path):
    """With ``overwrite`` the earlier run's files that the new set lacks go (and the folders they leave empty),
    found by its list (``manifest``): a file of the user's own stays even when its name matches what a run would
    write (``replaces``), so does another command's output in the same folder (its own list), and a list naming a
    path outside the folder removes nothing there. A folder from before the lists, or an unreadable list: the
    files named as ``replaces`` says are moved aside into a new ``earlier_outputs_*`` folder, the user's among
    them, none removed."""
    from deepfinder_unsup.io.files import publish_folder

    def publish(*names, manifest="cluster_outputs.txt", overwrite=False):
        staging = tmp_path / "stage"
        for name in names:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(name)
        publish_folder(staging, out, overwrite, last=names[-1], manifest=manifest, replaces=patterns)

    def files_left():
        return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())

    out, patterns = tmp_path / "out", ("clusters_k*.star", "figures/tsne_*.png")
    publish("clusters_k2.star", "clusters_k9.star", "figures/tsne_k9.png", "figures/gallery/g.png", "m.json")
    publish("cluster1_average.mrc", "figures/average_c1.png", "a.json", manifest="average_outputs.txt")
    (out / "figures" / "tsne_mine.png").write_text("mine")  # --out . in a project with figures of its own
    (out / "clusters_k7.star").write_text("mine")
    (tmp_path / "elsewhere.txt").write_text("mine")
    (out / "cluster_outputs.txt").write_text((out / "cluster_outputs.txt").read_text() + "../elsewhere.txt\n")
    publish("clusters_k2.star", "m.json", overwrite=True)
    averages = ["a.json", "average_outputs.txt", "cluster1_average.mrc", "figures/average_c1.png"]
    mine = ["clusters_k7.star", "figures/tsne_mine.png"]
    assert files_left() == sorted([*averages, *mine, "clusters_k2.star", "cluster_outputs.txt", "m.json"])
    assert (tmp_path / "elsewhere.txt").exists() and not (out / "figures" / "gallery").exists()  # left empty: gone
    publish("a.json", manifest="average_outputs.txt", overwrite=True)  # no average this time: its files go
    assert files_left() == sorted(
        ["a.json", "average_outputs.txt", *mine, "clusters_k2.star", "cluster_outputs.txt", "m.json"]
    )
    assert not (out / "figures" / "average_c1.png").exists() and (out / "figures").is_dir()  # not empty: kept
    for earlier_list in ("absent", b"\xff\xfe not a list"):  # before the lists existed, or unreadable
        (out / "cluster_outputs.txt").unlink()
        if earlier_list != "absent":
            (out / "cluster_outputs.txt").write_bytes(earlier_list)
        (out / "clusters_k5.star").write_text("an earlier run's")
        (out / "figures" / "tsne_k5.png").write_text("an earlier run's")
        before = set(out.glob("earlier_outputs_*"))
        publish("clusters_k2.star", "m.json", overwrite=True)
        (aside,) = set(out.glob("earlier_outputs_*")) - before  # a new folder each time, nothing lost
        moved = sorted(p.relative_to(aside).as_posix() for p in aside.rglob("*") if p.is_file())
        assert moved == ["clusters_k5.star", "clusters_k7.star", "figures/tsne_k5.png", "figures/tsne_mine.png"]
        assert (aside / "clusters_k7.star").read_text() == "mine" and not (out / "clusters_k5.star").exists()
        assert (out / "clusters_k2.star").read_text() == "clusters_k2.star" and not (out / "figures").exists()
        (out / "clusters_k7.star").write_text("mine")
        (out / "figures").mkdir()
        (out / "figures" / "tsne_mine.png").write_text("mine")
    assert (out / "cluster_outputs.txt").read_text().startswith("# the files this run wrote")


def test_star_writing_one_particle_none_and_relion5_needs(tmp_path):
    """One particle is a particle list; none is refused; RELION 5's centred coordinates need both the
    tomogram size and its voxel size (one of them is not enough) and are written only for rows that have both;
    an existing file is replaced only with ``overwrite``."""
    import starfile

    one = [new_object(2, 10.0, 20.0, 30.0, tomo_name="TS_1")]
    write_star(one, tmp_path / "one.star")
    table = starfile.read(tmp_path / "one.star")
    assert list(table["rlnClassNumber"]) == [2] and list(table["rlnCoordinateZ"]) == [30.0]
    assert "rlnCenteredCoordinateXAngst" not in table and "rlnAngleRot" not in table
    with pytest.raises(InputError, match=r"empty\.star: refusing to write an empty particle list"):
        write_star([], tmp_path / "empty.star")
    for size, pixel in (((100, 100, 50), None), (None, 10.0)):
        with pytest.raises(InputError, match=r"r5\.star: RELION 5 output needs tomogram_size and pixel_size"):
            write_star(one, tmp_path / "r5.star", relion5=True, tomogram_size=size, pixel_size=pixel)
    two = one + [new_object(1, 5.0, 5.0, 5.0, tomo_name="TS_2")]
    write_star(two, tmp_path / "half.star", geometry={"TS_1": ((100, 100, 50), 10.0)})  # TS_2 unknown
    assert "rlnCenteredCoordinateXAngst" not in starfile.read(tmp_path / "half.star")
    write_star(
        two,
        tmp_path / "half.star",
        geometry={"TS_1": ((100, 100, 50), 10.0), "TS_2": ((20, 20, 20), 5.0)},
        overwrite=True,
    )
    table = starfile.read(tmp_path / "half.star")
    np.testing.assert_allclose(table["rlnCenteredCoordinateXAngst"], [(10 - 50) * 10.0, (5 - 10) * 5.0])
    with pytest.raises(FileExistsError, match="half.star"):
        write_star(two, tmp_path / "half.star")
