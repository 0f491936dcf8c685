"""Sub-tomogram extraction: exact positions and sizes across voxel sizes, borders, memory, errors."""

from __future__ import annotations

import os
import tracemalloc
import warnings

import numpy as np
import pytest
from scipy import ndimage

from deepfinder_unsup import extract_subtomograms
from deepfinder_unsup.extract import (
    crop_or_pad,
    expand_subtomogram_paths,
    iter_subtomograms,
    load_dataset_subtomograms,
    load_subtomogram_files,
    resample_volume,
)
from deepfinder_unsup.io import InputError, write_dataset, write_mrc
from deepfinder_unsup.io.objl import new_object
from deepfinder_unsup.volume import normalise

from .conftest import gaussian_blob_tomogram


def _moments(box):
    """Centre of mass (x, y, z) and isotropic Gaussian sigma (voxels) of a blob in a box."""
    w = np.clip(box - np.median(box), 0, None)
    com = np.array(ndimage.center_of_mass(w))
    z, y, x = np.meshgrid(*(np.arange(s) for s in box.shape), indexing="ij")
    r2 = (z - com[0]) ** 2 + (y - com[1]) ** 2 + (x - com[2]) ** 2
    sigma = np.sqrt((w * r2).sum() / w.sum() / 3)
    return com[::-1], sigma


def test_same_voxel_size_is_an_exact_crop(tmp_path, rng):
    tomo = rng.standard_normal((50, 60, 70)).astype(np.float32)
    write_mrc(tomo, tmp_path / "t.mrc", 10.0)
    objl = [new_object(1, 30, 25, 22, tomo_idx=0)]
    boxes, kept = extract_subtomograms([tmp_path / "t.mrc"], objl, box_size=16, voxel_size=10.0)
    patch = tomo[22 - 8 : 22 + 8, 25 - 8 : 25 + 8, 30 - 8 : 30 + 8]  # DeepFinder's tomo[z-B/2:z+B/2, ...]
    np.testing.assert_allclose(boxes[0], (patch - patch.mean()) / patch.std(), rtol=1e-4, atol=1e-5)
    assert kept[0]["source"].endswith("t.mrc")
    write_mrc(tomo, tmp_path / "wrong.mrc", 7.0)  # a wrong header, overridden by the caller
    wide = new_object(1, 35, 30, 25, tomo_idx=0)
    boxes, _ = extract_subtomograms([tmp_path / "wrong.mrc"], [wide], tomogram_voxel_size=10.0)  # 40 of 10 Å
    patch = tomo[25 - 20 : 25 + 20, 30 - 20 : 30 + 20, 35 - 20 : 35 + 20]
    np.testing.assert_allclose(boxes[0], (patch - patch.mean()) / patch.std(), rtol=1e-4, atol=1e-5)
    streamed, _ = next(iter_subtomograms([tmp_path / "wrong.mrc"], [wide], tomogram_voxel_size=10.0))
    np.testing.assert_array_equal(streamed, boxes)  # the streaming reader has the same defaults


def test_streamed_batches_follow_each_pick_to_its_tomogram(tmp_path, rng):
    """Picks of two tomograms come in batches of the size asked (the last one shorter), each box cut from its
    own tomogram (raw values with normalize=False); centres from -0.5 to size - 0.5 (exclusive) are inside,
    beyond is refused; a box of equal voxels is refused naming the particle."""
    a = rng.standard_normal((20, 20, 20)).astype(np.float32)
    b = rng.standard_normal((20, 20, 20)).astype(np.float32)
    write_mrc(a, tmp_path / "a.mrc", 10.0)
    write_mrc(b, tmp_path / "b.mrc", 10.0)
    objl = [new_object(1, 10, 10, 10, tomo_idx=t, obj_id=i) for i, t in enumerate([1, 0, 1, 1, 0])]
    tomos = [tmp_path / "a.mrc", tmp_path / "b.mrc"]
    batches = list(iter_subtomograms(tomos, objl, box_size=4, batch_size=2, normalize=False, border="pad"))
    assert [len(x) for x, _ in batches] == [2, 2, 1]
    boxes = np.concatenate([x for x, _ in batches])
    for box, obj in zip(boxes, objl):
        np.testing.assert_array_equal(box, [a, b][obj["tomo_idx"]][8:12, 8:12, 8:12])
    assert [o["source"][-5:] for _, batch in batches for o in batch] == ["b.mrc", "a.mrc", "b.mrc", "b.mrc", "a.mrc"]
    inside = [new_object(1, -0.5, 10, 10), new_object(1, 10, 19.49, 10), new_object(1, 10, 10, -0.49)]
    assert len(extract_subtomograms(tomos[:1], inside, box_size=4, border="pad")[0]) == 3
    for x, y, z in [(-0.51, 10, 10), (10, 19.5, 10), (10, 10, 20)]:
        with pytest.raises(InputError, match=r"a\.mrc: object at .* lies outside the tomogram"):
            extract_subtomograms(tomos[:1], [new_object(1, x, y, z)], box_size=4, border="pad")
    flat = a.copy()
    flat[:8] = 1.0
    write_mrc(flat, tmp_path / "flat.mrc", 10.0)
    with pytest.raises(
        InputError, match=r"flat\.mrc: particle 1 at \(x, y, z\) = \(10\.0, 10\.0, 3\.0\): its box has all"
    ):
        extract_subtomograms([tmp_path / "flat.mrc"], [new_object(1, 10, 10, 12), new_object(1, 10, 10, 3)], box_size=4)


def test_the_source_window_holds_the_box_and_its_filter_margin_only():
    """A 40-box of 10 Å from 5 Å voxels needs 80 source voxels around the centre (zyx order), plus the filter
    margin on each side: the window read, and so the memory per particle, is no bigger."""
    from deepfinder_unsup.extract import _box_window

    lo, hi = _box_window((50.3, 40.0, 30.7), 40, 5.0, 10.0, margin=3)
    np.testing.assert_array_equal(lo, [np.floor(30.7 - 40) - 3, 40 - 40 - 3, np.floor(50.3 - 40) - 3])
    np.testing.assert_array_equal(hi, [np.ceil(30.7 + 40) + 4, 40 + 40 + 4, np.ceil(50.3 + 40) + 4])
    lo, hi = _box_window((50.0, 50.0, 50.0), 40, 13.68, 10.0, margin=0)  # upsampling: 50 -+ 14.6 voxels
    assert lo.tolist() == [35] * 3 and hi.tolist() == [66] * 3


def test_every_box_skipped_gives_an_empty_batch_of_the_right_shape(tmp_path, rng):
    write_mrc(rng.standard_normal((20, 20, 20)), tmp_path / "t.mrc", 10.0)
    with pytest.warns(UserWarning, match="skipped 2 of 2 particles"):
        boxes, kept = extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 2, 10, 10)] * 2, box_size=16)
    assert boxes.shape == (0, 16, 16, 16) and boxes.dtype == np.float32 and kept == []


def test_resampling_13_68_to_10_keeps_position_and_size_in_angstrom(tmp_path):
    src_vs, sigma_a = 13.68, 30.0
    centres = [(40.3, 35.0, 30.6), (60.0, 70.2, 28.0), (25.5, 60.5, 32.2)]
    tomo = gaussian_blob_tomogram((60, 100, 90), centres, sigma_a / src_vs, src_vs)
    write_mrc(tomo, tmp_path / "t.mrc", src_vs)
    objl = [new_object(1, *c, tomo_idx=0) for c in centres]
    boxes, _ = extract_subtomograms([tmp_path / "t.mrc"], objl, box_size=40, voxel_size=10.0)
    for box in boxes:
        com, sigma = _moments(box)
        np.testing.assert_allclose(com, [20, 20, 20], atol=0.15)  # particle at index B/2
        assert sigma * 10.0 == pytest.approx(sigma_a, rel=0.05)  # size kept in Å


@pytest.mark.parametrize("source_voxel,target_voxel,box", [(5.0, 8.0, 16), (10.0, 6.5, 16), (10.0, 6.5, 15)])
def test_resampled_box_equals_resampling_the_whole_tomogram(source_voxel, target_voxel, box):
    """The window read around a particle must be big enough and in the right place: the box equals the same
    filter and cubic interpolation applied to the whole tomogram (up to the spline's edge effects)."""
    from deepfinder_unsup.extract import extract_one
    from deepfinder_unsup.volume import antialias_sigma

    rng = np.random.default_rng(5)
    tomo = ndimage.gaussian_filter(rng.standard_normal((60, 70, 80)), 1.5).astype(np.float32)
    centre_xyz = np.array([41.3, 33.7, 27.2])  # an odd box too: its centre is voxel box // 2
    got, crossed = extract_one(tomo, centre_xyz, box, source_voxel, target_voxel)
    sigma = antialias_sigma(source_voxel, target_voxel)
    smooth = ndimage.gaussian_filter(tomo, sigma, mode="nearest") if sigma > 0 else tomo
    grid = (np.arange(box) - box // 2) * target_voxel / source_voxel
    z, y, x = (centre_xyz[::-1][i] + grid for i in range(3))
    want = ndimage.map_coordinates(smooth, np.stack(np.meshgrid(z, y, x, indexing="ij")), order=3, mode="nearest")
    assert not crossed
    assert np.abs(got - want).max() < 0.02 * want.std()


def test_downsampling_is_antialiased():
    """A pattern at the source Nyquist must not alias into low frequencies when downsampled 2x."""
    z, y, x = np.meshgrid(*(np.arange(64),) * 3, indexing="ij")
    checker = ((-1.0) ** (x + y + z)).astype(np.float32)
    out = resample_volume(checker, 5.0, 10.0)
    # the new grid samples the source voxels themselves (centre 32 -> 16): without the blur every output
    # voxel would be +1; the interior keeps under 1 % (0.07^3); the outermost layer, where the filter
    # reflects the volume and the pattern breaks, under 20 %
    assert np.abs(out[1:-1, 1:-1, 1:-1]).max() < 0.01
    assert np.abs(out).max() < 0.2


def test_downsampling_keeps_what_the_new_grid_can_hold():
    """The anti-alias blur is the documented one (FWHM of the new voxel): a wave at half the new grid's Nyquist
    keeps exp(-2 pi^2 sigma^2 f^2) of its amplitude, sigma = sqrt(2^2 - 1) / 2.3548 source voxels at 2x (0.846),
    not less: a blur too strong (which the aliasing test above cannot see) would wash out detail the network uses."""
    z, y, x = np.meshgrid(*(np.arange(64),) * 3, indexing="ij")
    frequency = 0.125  # cycles per source voxel: 0.25 per new voxel
    out = resample_volume(np.cos(2 * np.pi * frequency * x).astype(np.float32), 5.0, 10.0)
    peaks = out[16, 16, 8:24:2] * np.cos(2 * np.pi * frequency * 2 * np.arange(8, 24, 2))  # new voxel i at 2i
    sigma = np.sqrt(3.0) / 2.3548
    np.testing.assert_allclose(peaks, np.exp(-2 * np.pi**2 * sigma**2 * frequency**2), atol=0.005)


def test_border_skip_warns_with_count_and_pad_flags(tmp_path, rng):
    write_mrc(rng.standard_normal((40, 40, 40)), tmp_path / "t.mrc", 10.0)
    objl = [
        new_object(1, 20, 20, 20, tomo_idx=0),
        new_object(1, 3, 20, 20, tomo_idx=0),
        new_object(1, 20, 38, 20, tomo_idx=0),
    ]
    with pytest.warns(UserWarning, match="skipped 2 of 3 particles"):
        boxes, kept = extract_subtomograms([tmp_path / "t.mrc"], objl, box_size=16)
    assert len(boxes) == 1 and kept[0]["x"] == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, kept = extract_subtomograms([tmp_path / "t.mrc"], objl, box_size=16, border="pad")
    assert [k["border_padded"] for k in kept] == [False, True, True]
    assert np.isfinite(boxes).all() and boxes.shape == (3, 16, 16, 16)


def test_errors_name_the_file_and_problem(tmp_path, rng):
    write_mrc(rng.standard_normal((20, 20, 20)), tmp_path / "t.mrc", 10.0)
    with pytest.raises(FileNotFoundError, match="nope.mrc"):
        extract_subtomograms([tmp_path / "nope.mrc"], [new_object(1, 5, 5, 5)], box_size=8)
    with pytest.raises(InputError, match="object 0 has tomo_idx 3, but 1 tomogram"):
        extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 5, 5, 5, tomo_idx=3)], box_size=8)
    with pytest.raises(InputError, match="^picks: the object list is empty: no particles to extract$"):
        extract_subtomograms([tmp_path / "t.mrc"], [], box_size=8)
    for box, voxel, message in (
        (0, 10.0, "box size must be at least 4 voxels, got 0"),
        (3, 10.0, "box size must be at least 4 voxels, got 3"),
    ):
        with pytest.raises(InputError, match=f"^{message}"):
            extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 5, 5, 5)], box_size=box, voxel_size=voxel)
    extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 10, 10, 10)], box_size=4)  # 4 is enough
    for voxel in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match=rf"^voxel size must be a positive number of Å, got {voxel}$"):
            extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 5, 5, 5)], box_size=8, voxel_size=voxel)
    with pytest.raises(InputError, match="^batch size must be at least 1, got 0$"):
        next(iter_subtomograms([tmp_path / "t.mrc"], [new_object(1, 5, 5, 5)], batch_size=0))
    with pytest.raises(InputError, match=r"t\.mrc: object at .* lies outside the tomogram"):
        extract_subtomograms([tmp_path / "t.mrc"], [new_object(1, 50, 5, 5)], box_size=8)
    (tmp_path / "junk.mrc").write_text("hello")
    with pytest.raises(InputError, match=r"junk\.mrc: not a readable MRC"):
        extract_subtomograms([tmp_path / "junk.mrc"], [new_object(1, 5, 5, 5)], box_size=8)


def resident_mb() -> float:
    """This process's resident memory (MB), mapped file pages included (tracemalloc cannot see those)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_streaming_memory_does_not_grow_with_particles(tmp_path, rng):
    """Memory-mapped tomogram: heap allocations stay at one batch, and the mapped pages read for the particles
    are dropped after each batch, so resident memory does not grow to the tomogram's size (200 MB)."""
    import mrcfile

    with mrcfile.new_mmap(tmp_path / "big.mrc", shape=(232, 464, 464), mrc_mode=2) as m:
        for z in range(0, 232, 8):
            m.data[z : z + 8] = rng.standard_normal((8, 464, 464), dtype=np.float32)
        m.voxel_size = 10.0
    objl = [new_object(1, *rng.uniform(25, 200, 3), tomo_idx=0) for _ in range(600)]
    before = resident_mb()
    growth = 0.0
    tracemalloc.start()
    n = 0
    for batch, _ in iter_subtomograms([tmp_path / "big.mrc"], objl, box_size=40, batch_size=64):
        n += len(batch)
        growth = max(growth, resident_mb() - before)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 600
    assert peak < 120e6  # ~ a few batches of 64 x 40^3 float32 (16 MB each)
    assert growth < 100, f"resident memory grew by {growth:.0f} MB: mapped tomogram pages are kept"


def test_subtomogram_files_of_any_size_and_dataset_files(tmp_path, rng):
    write_mrc(rng.standard_normal((30, 30, 30)), tmp_path / "a.mrc", 13.68)
    write_mrc(rng.standard_normal((50, 50, 50)), tmp_path / "b.mrc", 10.0)
    vols, objl = load_subtomogram_files(tmp_path, box_size=40, voxel_size=10.0)
    assert vols.shape == (2, 40, 40, 40) and [o["source"][-5:] for o in objl] == ["a.mrc", "b.mrc"]
    np.testing.assert_allclose(vols.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(vols.std(axis=(1, 2, 3)), 1, atol=1e-4)
    with pytest.raises(InputError, match="no sub-tomogram MRC files"):
        load_subtomogram_files(tmp_path / "*.rec")
    write_mrc(rng.standard_normal((40, 40, 40)), tmp_path / "c.rec", 10.0)  # IMOD's extension, in a folder too
    assert [p.name for p in expand_subtomogram_paths(tmp_path)] == ["a.mrc", "b.mrc", "c.rec"]


def test_a_sub_tomogram_file_that_is_not_cubic_is_used_with_one_warning_naming_it(tmp_path, rng):
    """A slab or a two-image stack is centre-padded like any box but said (it was embedded silently)."""
    import warnings

    write_mrc(rng.standard_normal((40, 40, 40)), tmp_path / "a.mrc", 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_subtomogram_files(tmp_path, box_size=40, voxel_size=10.0)  # cubic: nothing to say
    write_mrc(rng.standard_normal((2, 40, 40)), tmp_path / "b.mrc", 10.0)
    with pytest.warns(UserWarning, match=r"^1 of 2 sub-tomogram files are not cubic, e\.g\. .*b\.mrc \(40 x 40 x 2"):
        vols, _ = load_subtomogram_files(tmp_path, box_size=40, voxel_size=10.0)
    assert vols.shape == (2, 40, 40, 40)


def test_sub_tomogram_files_smaller_than_the_models_box_are_said_once(tmp_path, rng):
    """RELION often extracts boxes of 150-250 Å; padded to the model's 400 Å they show a flat surround the network
    never saw in training: embedded as before, but said (it was silent)."""
    import warnings

    write_mrc(rng.standard_normal((32, 32, 32)), tmp_path / "a.mrc", 13.68)  # 438 Å: a full box
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_subtomogram_files(tmp_path, box_size=40, voxel_size=10.0)
    write_mrc(rng.standard_normal((64, 64, 64)), tmp_path / "b.mrc", 2.7)  # 173 Å
    write_mrc(rng.standard_normal((64, 64, 64)), tmp_path / "c.mrc", 2.7)
    with pytest.warns(
        UserWarning, match=r"^2 of 3 sub-tomogram files cover less than the model's 400 Å box, e\.g\. "
    ) as w:
        vols, _ = load_subtomogram_files(tmp_path, box_size=40, voxel_size=10.0)
    assert vols.shape == (3, 40, 40, 40)
    assert "(173 Å; at its 2.7 Å a voxel, re-extract at least 150 voxels)" in str(w[0].message)  # 400 / 2.7 = 148.1


def _gaussian(box: int, sigma: float) -> np.ndarray:
    z, y, x = np.indices((box,) * 3) - box // 2
    return np.exp(-(x**2 + y**2 + z**2) / (2 * sigma**2)).astype(np.float32)


def _width(vol: np.ndarray) -> float:
    """RMS radius about the box centre n // 2 (voxels) of a positive blob."""
    w = vol - vol.min()
    r2 = ((np.indices(vol.shape) - vol.shape[0] // 2) ** 2).sum(axis=0)
    return float(np.sqrt((w * r2).sum() / w.sum() / 3))


def test_dataset_files_are_resampled_to_the_model_in_physical_units(tmp_path):
    """A Gaussian of sigma 30 Å stored at 7.5 Å / 64 voxels, read at 10 Å / 40 voxels: sigma 3 voxels at the
    centre; at its own size and voxel size it comes back as stored (normalised); a NaN box is refused by name."""
    blob = _gaussian(64, 4.0)
    write_dataset(tmp_path / "d.h5", np.stack([blob, 2 * blob]), [new_object(1, 32, 32, 32)] * 2, 7.5)
    vols, objl = load_dataset_subtomograms(tmp_path / "d.h5", box_size=40, voxel_size=10.0)
    assert vols.shape == (2, 40, 40, 40) and len(objl) == 2
    assert _width(vols[0]) == pytest.approx(3.0, abs=0.1)
    assert np.unravel_index(vols[0].argmax(), vols[0].shape) == (20, 20, 20)
    np.testing.assert_allclose(vols[0], vols[1], atol=1e-5)  # normalised per box
    write_dataset(tmp_path / "same.h5", _gaussian(40, 3.0)[None], [new_object(1, 20, 20, 20)], 10.0)
    same, _ = load_dataset_subtomograms(tmp_path / "same.h5")  # the defaults: 40 voxels of 10 Å
    np.testing.assert_allclose(same[0], normalise(_gaussian(40, 3.0)[None])[0], atol=1e-6)
    bad = np.zeros((1, 40, 40, 40), np.float32)
    bad[0, 1, 2, 3] = np.nan
    write_dataset(tmp_path / "nan.h5", bad, [new_object(1, 20, 20, 20)], 10.0)
    with pytest.raises(InputError, match="nan.h5"):
        load_dataset_subtomograms(tmp_path / "nan.h5")


def test_crop_or_pad_keeps_the_centre_voxel():
    vol = np.zeros((31, 31, 31), np.float32)
    vol[15, 15, 15] = 1
    assert crop_or_pad(vol, 40)[20, 20, 20] == 1
    vol = np.zeros((50, 50, 50), np.float32)
    vol[25, 25, 25] = 1
    assert crop_or_pad(vol, 40)[20, 20, 20] == 1


def test_flips_about_the_centre_are_the_180_degree_rotations():
    """Against an independent rotation of voxel coordinates about the centre n // 2 (scipy), in the interior
    (the roll that keeps the centre wraps one edge plane)."""
    from scipy.spatial.transform import Rotation

    from deepfinder_unsup.volume import wedge_symmetric_views

    rng = np.random.default_rng(3)
    vol = rng.standard_normal((1, 10, 10, 10)).astype(np.float32)
    views = wedge_symmetric_views(vol)
    np.testing.assert_array_equal(views[0], vol)
    c = 10 // 2
    zyx = np.stack(np.meshgrid(*(np.arange(10),) * 3, indexing="ij"), -1).reshape(-1, 3)
    for view, axis in zip(views[1:], ("x", "y", "z")):
        xyz = Rotation.from_euler(axis, 180, degrees=True).apply(zyx[:, ::-1] - c) + c  # where each voxel goes
        src = np.rint(xyz[:, ::-1]).astype(int)
        inside = ((src >= 0) & (src < 10)).all(axis=1)  # index 0 has no partner about centre 5: the wrapped plane
        want = np.empty(1000, np.float32)
        want[:] = np.nan
        want[np.ravel_multi_index(src[inside].T, (10, 10, 10))] = vol[0].ravel()[inside]
        got = view[0].ravel()
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(got[ok], want[ok])
        assert view[0][c, c, c] == vol[0][c, c, c]


def test_check_volumes_names_the_first_bad_volume_and_counts_the_rest(rng):
    """NaN / inf and constant volumes each get one message naming the first offender (by name, or by index),
    the count only when there are more; a constant volume among varied ones is still found (per volume)."""
    from deepfinder_unsup.extract import check_volumes

    vols = rng.normal(size=(5, 4, 4, 4))
    check_volumes(vols, "good.h5")  # nothing to say
    bad = vols.copy()
    bad[2, 1, 1, 1] = np.nan
    with pytest.raises(InputError) as one:
        check_volumes(bad, "f.h5", ["a", "b", "c", "d", "e"])
    assert str(one.value) == "f.h5: c has NaN or infinite voxels"
    bad[4, 0, 0, 0] = np.inf
    with pytest.raises(InputError) as two:
        check_volumes(bad, "f.h5")
    assert str(two.value) == "f.h5: sub-tomogram 2 has NaN or infinite voxels (2 such in all)"
    flat = vols.copy()
    flat[3] = 7.0
    with pytest.raises(InputError) as constant:
        check_volumes(flat, "g.h5")
    assert str(constant.value) == "g.h5: sub-tomogram 3 has all voxels equal (no signal)"
    flat[1] = -2.0
    with pytest.raises(InputError, match=r"^g.h5: sub-tomogram 1 has all voxels equal \(no signal\) \(2 such"):
        check_volumes(flat, "g.h5")


def test_subtomogram_files_objects_are_box_centres_labelled_0_with_their_file(tmp_path, rng):
    """Each file's object: label 0, no tomogram, no angles, the centre of the OUTPUT box (voxels), its path;
    the file's own voxel size is used unless overruled, and a bad file is named in the error."""
    write_mrc(rng.standard_normal((20, 20, 20)), tmp_path / "a.mrc", 20.0)
    vols, objl = load_subtomogram_files(tmp_path / "a.mrc", box_size=37, voxel_size=10.0)
    assert vols.shape == (1, 37, 37, 37)
    assert objl == [
        {
            "tomo_idx": None,
            "obj_id": 0,
            "label": 0,
            "x": 18.0,
            "y": 18.0,
            "z": 18.0,
            "psi": None,
            "phi": None,
            "the": None,
            "cluster_size": None,
            "source": str(tmp_path / "a.mrc"),
        }
    ]
    # the defaults, 40 voxels of 10 Å: 20 voxels of 20 Å fill the box exactly, no padded (constant) face
    full, _ = load_subtomogram_files(tmp_path / "a.mrc")
    assert full.shape == (1, 40, 40, 40) and np.ptp(full[0, 0]) > 0 and np.ptp(full[0, :, :, -1]) > 0
    # overruling the header: 20 voxels of 10 Å stay 20 voxels, padded with zeros out to 37 (before normalising)
    padded, _ = load_subtomogram_files(tmp_path / "a.mrc", box_size=37, voxel_size=10.0, file_voxel_size=10.0)
    assert np.ptp(padded[0, 0]) == 0 and np.ptp(padded[0, 18]) > 0
    write_mrc(np.ones((8, 8, 8)), tmp_path / "flat.mrc", 10.0)
    with pytest.raises(InputError, match=r"flat.mrc: the volume has all voxels equal"):
        load_subtomogram_files(tmp_path / "flat.mrc", box_size=8, voxel_size=10.0)


def test_border_flag_is_exact_and_outside_voxels_get_the_inside_mean():
    """Same voxel size: a box touching the first or last voxel has not crossed; one voxel further has, and
    its outside voxels hold the mean of the inside ones (not 0, not 1). The result is float32."""
    from deepfinder_unsup.extract import extract_one

    tomo = np.arange(20 * 20 * 20, dtype=np.float64).reshape(20, 20, 20) % 7 + 3.0
    box, crossed = extract_one(tomo, (4, 10, 10), 8, 10.0, 10.0)  # x from 0 to 7
    assert not crossed and box.dtype == np.float32
    np.testing.assert_array_equal(box, tomo[6:14, 6:14, 0:8])
    assert not extract_one(tomo, (16, 10, 10), 8, 10.0, 10.0)[1]  # x from 12 to 19
    assert extract_one(tomo, (16.6, 10, 10), 8, 10.0, 10.0)[1]  # rounds to 17: x to 20, one past the end
    box, crossed = extract_one(tomo, (3, 10, 10), 8, 10.0, 10.0)  # x from -1
    inside = tomo[6:14, 6:14, 0:7]
    assert crossed
    np.testing.assert_array_equal(box[:, :, 1:], inside)
    np.testing.assert_allclose(box[:, :, 0], inside.mean(), rtol=1e-6)


def test_resampled_extraction_is_cubic_and_flags_the_border_of_its_window():
    """Another voxel size: a parabola is reproduced by spline interpolation of order 3 (and higher), up to the
    constant the anti-alias filter adds, not by linear interpolation (checked: order 1 fails this test); a
    window inside the tomogram is not flagged, one over the edge is."""
    from deepfinder_unsup.extract import extract_one

    z, y, x = np.meshgrid(*(np.arange(64.0),) * 3, indexing="ij")
    quad = (x - 32.0) ** 2 / 10.0
    box, crossed = extract_one(quad, (32.0, 32.0, 32.0), 8, 10.0, 12.0)
    assert not crossed
    xs = 32.0 + (np.arange(8) - 4) * 1.2
    expected = (xs - 32.0) ** 2 / 10.0
    sigma_blur = box[4, 4] - expected  # the anti-alias filter adds a constant to a parabola: its curvature x s^2
    np.testing.assert_allclose(sigma_blur, sigma_blur.mean(), atol=2e-3)
    assert extract_one(quad, (6.0, 32.0, 32.0), 8, 10.0, 12.0)[1]


def test_picks_that_look_binned_differently_are_warned_about(tmp_path, caplog):
    """Picks made on a tomogram binned twice as much fall in the first half of every axis, inside the volume: no
    error, boxes of the wrong places. Spread picks, or few, give no warning."""
    from deepfinder_unsup.pipeline.inputs import warn_if_picks_look_binned

    write_mrc(np.zeros((40, 120, 100), np.float32), tmp_path / "t.mrc", 10.0)  # x 100, y 120, z 40
    rng = np.random.default_rng(0)
    spread = [new_object(1, *xyz, tomo_idx=0) for xyz in rng.uniform(0.1, 0.9, (12, 3)) * [100, 120, 40]]
    halved = [{**o, "x": o["x"] / 2, "y": o["y"] / 2, "z": o["z"] / 2} for o in spread]
    with caplog.at_level("WARNING", logger="deepfinder_unsup"):
        warn_if_picks_look_binned(spread, "spread.xml", [tmp_path / "t.mrc"])
        warn_if_picks_look_binned(halved[:9], "few.xml", [tmp_path / "t.mrc"])
        assert caplog.text == ""
        warn_if_picks_look_binned(halved, "halved.xml", [tmp_path / "t.mrc"])
    assert "halved.xml: all 12 picks in" in caplog.text and "of its 100 x 120 x 40 voxels (x y z)" in caplog.text


def test_a_voxel_size_given_against_the_header_is_warned_about(tmp_path, caplog):
    """--voxel-size overrides the header (meant for DeepFinder's 0): said when the header gave another size."""
    import mrcfile

    from deepfinder_unsup.pipeline.inputs import check_tomogram_headers

    write_mrc(np.zeros((8, 8, 8), np.float32), tmp_path / "ten.mrc", 10.0)
    with mrcfile.new(tmp_path / "unset.mrc") as m:
        m.set_data(np.zeros((8, 8, 8), np.float32))  # voxel size 0, as DeepFinder writes
    with caplog.at_level("WARNING", logger="deepfinder_unsup"):
        check_tomogram_headers([tmp_path / "ten.mrc", tmp_path / "unset.mrc"], 10.05)  # within 1 %: the same
        check_tomogram_headers([tmp_path / "unset.mrc"], 13.68)
        check_tomogram_headers([tmp_path / "ten.mrc"], None)
        assert caplog.text == ""
        check_tomogram_headers([tmp_path / "ten.mrc", tmp_path / "unset.mrc"], 13.68)
    assert (
        caplog.text.count("header says") == 1
        and "ten.mrc: its header says 10 Å per voxel; using the 13.68" in caplog.text
    )
    with pytest.raises(FileNotFoundError, match="gone.mrc"):
        check_tomogram_headers([tmp_path / "gone.mrc"], None)
