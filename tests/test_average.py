"""Subtomogram averaging: rotation sampling, the missing wedge, FSC, alignment that finds a known pose, and an
average that recovers a simulated structure it never saw in any orientation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from deepfinder_unsup.average import (
    align,
    back_rotated,
    corrected_fsc,
    fourier_bin,
    fourier_shell_correlation,
    resolution_at,
    rotation_grid,
    spherical_mask,
    subtomogram_average,
    wedge_mask,
)
from deepfinder_unsup.cli import main
from deepfinder_unsup.geometry import rotate_volume
from deepfinder_unsup.io import InputError, read_mrc, read_objl, write_objl, write_star
from deepfinder_unsup.io.objl import new_object


def asymmetric_blob(box: int = 24) -> np.ndarray:
    """Three Gaussian blobs of different sizes at different places: no rotational symmetry."""
    z, y, x = np.meshgrid(*[np.arange(box, dtype=float)] * 3, indexing="ij")
    c = box // 2

    def blob(dz, dy, dx, s):
        return np.exp(-((z - c - dz) ** 2 + (y - c - dy) ** 2 + (x - c - dx) ** 2) / (2 * s**2))

    return (blob(0, 0, 0, 2.5) + 0.8 * blob(0, 0, 6, 1.8) + 0.6 * blob(5, -3, 0, 1.5)).astype(np.float32)


def test_rotation_grid_covers_so3_evenly():
    grid = rotation_grid(1000)
    assert np.allclose(np.linalg.norm(grid.as_quat(), axis=1), 1.0)
    probes = Rotation.random(300, random_state=0)
    nearest = np.max(np.abs(probes.as_quat() @ grid.as_quat().T), axis=1)
    worst = np.degrees(2 * np.arccos(np.clip(nearest, -1, 1))).max()
    assert worst < 25.0  # no hole: every rotation is within a grid step of a sample


def test_wedge_mask_keeps_the_tilt_range_and_drops_the_beam_axis():
    w = wedge_mask(32, (-60, 60))
    c = 16
    assert w[c, c, c + 10] == 1 and w[c + 10, c, c] == 0  # kx measured, kz (beam direction) not
    assert w[c + 5, c, c + 5] == 1 and w[c + 10, c, c + 3] == 0  # 45 degrees in, 73 degrees out
    assert np.all(w[:, :, c][w[:, :, c] > 0] == 1)
    fraction = w[:, c, :].mean()  # the plane ky = 0: 120 of 180 degrees of directions are measured
    assert 0.6 < fraction < 0.75


def test_fsc_of_identical_maps_is_one_and_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 32, 32))
    np.testing.assert_allclose(fourier_shell_correlation(a, a), 1.0)
    fsc = fourier_shell_correlation(a, rng.standard_normal((32, 32, 32)))
    assert np.abs(fsc[2:]).max() < 0.25 and abs(fsc[2:].mean()) < 0.05
    curve = np.array([1.0, 0.9, 0.5, 0.2, 0.1, 0.05])
    assert resolution_at(curve, 10.0, 32) == pytest.approx(32 * 10.0 / 4)  # first shell below 0.143
    assert resolution_at(np.ones(16), 10.0, 32) == 20.0  # never below: the Nyquist limit


def test_fourier_binning_keeps_a_smooth_map():
    vol = asymmetric_blob(32)
    small = fourier_bin(vol[None], 2)[0]
    direct = vol[::2, ::2, ::2]  # a smooth map sampled at twice the spacing: the same to within its blur
    assert np.corrcoef(small.ravel(), direct.ravel())[0, 1] > 0.97


def test_back_rotation_undoes_rotation_and_shift():
    vol = asymmetric_blob(32)
    rot = Rotation.from_euler("zxz", [40, 70, -20], degrees=True)
    shift = np.array([2.0, -1.0, 3.0])
    particle = rotate_volume(vol, rot, shift_xyz=shift, order=3)
    back = back_rotated(particle, rot, shift)
    mask = spherical_mask(32, 10)
    assert np.corrcoef((back * mask).ravel(), (vol * mask).ravel())[0, 1] > 0.97
    wrong = back_rotated(particle, rot.inv(), shift)
    assert np.corrcoef((wrong * mask).ravel(), (vol * mask).ravel())[0, 1] < 0.9


def test_alignment_finds_the_pose_it_was_given():
    ref = asymmetric_blob(24)
    grid = rotation_grid(300)
    truth = [17, 140, 233]
    shifts = np.array([[1, 0, -2], [0, 2, 1], [-1, -1, 0]], float)
    particles = np.stack([rotate_volume(ref, grid[j], shift_xyz=s) for j, s in zip(truth, shifts)])
    found, found_shifts, scores = align(np.fft.rfftn(particles, axes=(-3, -2, -1)), ref, grid, 1.0, 3.0)
    assert found.tolist() == truth
    np.testing.assert_allclose(found_shifts, shifts)
    assert (scores > 0).all()


def test_average_recovers_a_structure_from_noisy_wedged_particles():
    """Reference-free (from a sphere): simulated sub-tomograms (missing wedge, CTF, noise) of an asymmetric
    shape in random poses average to its map; the unaligned mean does not."""
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures
    from deepfinder_unsup.volume import crop_or_pad

    structs = load_structures(["builtin:corner_right"], 10.0)
    cfg = fixed_config(snr=1.0, negative_class=False, defocus_um=1.5)
    vols, _, _ = simulate_dataset(structs, 24, cfg, seed=3, n_workers=1, progress=False)
    true_map = -crop_or_pad(structs[0].density.astype(np.float32), 40)  # dark protein, as simulated
    result = subtomogram_average(vols, 10.0, n_rotations=600, iterations=6, global_iterations=3)

    def correlation_with_truth(volume):
        grid = rotation_grid(2000)
        ft = np.fft.rfftn(fourier_bin(volume[None], 2), axes=(-3, -2, -1))
        r, s, _ = align(ft, fourier_bin(true_map[None], 2)[0], grid, 1.0, 4)
        aligned = back_rotated(volume, grid[int(r[0])], s[0] * 2)
        mask = spherical_mask(40, 16)
        return np.corrcoef((aligned * mask).ravel(), (true_map * mask).ravel())[0, 1]

    assert correlation_with_truth(result.average) > correlation_with_truth(vols.mean(axis=0)) + 0.1
    assert correlation_with_truth(result.average) > 0.7
    assert 20.0 <= result.resolution < 60.0
    assert sorted(np.bincount(result.half)) == [12, 12]


def _noise_average(seed: int, angles: bool = False):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((40, 24, 24, 24)).astype(np.float32)
    start = rng.uniform(0, 360, (40, 3)) if angles else None
    return subtomogram_average(
        noise, 10.0, angles=start, iterations=3, global_iterations=2, n_rotations=300, n_fine_rotations=1200, seed=seed
    )


def test_fsc_of_pure_noise_is_corrected_for_what_the_half_maps_alignment_adds():
    """Half maps of pure noise, aligned onto each other over rotations and shifts, correlate at low frequencies
    (the alignment picks the pose where they do); the phase-randomised null measures that. Over six draws of
    noise the corrected FSC averages about 0 where the measured one does not, and it reads no better than the
    two coarsest shells every time, where the measured one reads finer shells in some."""
    results = [_noise_average(seed) for seed in range(6)]
    low = slice(1, 7)
    assert np.mean([r.fsc_measured[low].mean() for r in results]) > 0.15  # the bias is there
    assert np.mean([r.fsc_null[low].mean() for r in results]) > 0.15  # and the null sees it
    assert abs(np.mean([r.fsc[low].mean() for r in results])) < 0.05
    for r in results:
        np.testing.assert_allclose(r.fsc, corrected_fsc(r.fsc_measured, r.fsc_null))
    assert all(r.resolution >= 24 * 10.0 / 2 for r in results)
    assert sum(resolution_at(r.fsc_measured, 10.0, 24) < 24 * 10.0 / 2 for r in results) >= 2  # uncorrected


def test_with_pick_angles_each_half_starts_from_its_own_particles():
    """A start from all particles would put the same noise in both halves' references, and pure noise would read
    a finer resolution (80 Å here, measured with the shared start) than its two coarsest shells."""
    assert _noise_average(0, angles=True).resolution >= 24 * 10.0 / 2


def test_corrected_fsc_removes_the_null_and_keeps_a_perfect_match():
    measured = np.array([1.0, 0.6, 0.3, 0.1, 1.0])
    null = np.array([0.0, 0.2, 0.3, -0.2, 0.5])
    np.testing.assert_allclose(corrected_fsc(measured, null), [1.0, 0.5, 0.0, 0.1, 1.0])


def test_bad_particle_stacks_are_refused():
    for bad in ((60, -60), (-60, -60), (-100, 60), (-60, 95)):
        with pytest.raises(InputError, match="tilt range must be MIN < MAX"):
            subtomogram_average(np.zeros((4, 8, 8, 8)), 10.0, tilt_range=bad)
    with pytest.raises(InputError, match="at least 4"):
        subtomogram_average(np.zeros((3, 8, 8, 8)), 10.0)
    with pytest.raises(InputError, match="multiple of 4"):
        subtomogram_average(np.random.default_rng(0).standard_normal((6, 10, 10, 10)), 10.0)
    for voxel_size in (0.0, -10.0, float("nan")):  # 0 ran to the end on a divide by zero, its resolution NaN
        with pytest.raises(InputError, match="voxel size must be a positive number of Å"):
            subtomogram_average(np.random.default_rng(0).standard_normal((6, 8, 8, 8)), voxel_size)


def test_average_command_on_the_clusters_of_a_data_set(tmp_path):
    data = tmp_path / "sim"
    args = ["simulate", "--structures", "builtin:ring", "builtin:barrel", "--per-class", "6", "--workers", "1"]
    assert main([*args, "--out", str(data), "--seed", "2", "--no-negative"]) == 0
    out = tmp_path / "avg"
    cmd = ["average", str(data / "objects.xml"), "--dataset", str(data / "dataset.h5"), "--out", str(out)]
    cmd += ["--box", "24"]  # the data set's 40^3 boxes cropped: what is tested does not need the whole box
    assert main([*cmd, "--rotations", "5"]) == 1 and not out.exists()  # too coarse a search: refused, nothing made
    assert main([*cmd, "--tilt-range", "60", "-60"]) == 1 and not out.exists()  # no wedge measured: refused
    assert main([*cmd, "--box", "30"]) == 1 and not out.exists()  # the alignment bins by 2: refused up front
    assert main([*cmd, "--voxel-size", "5"]) == 1 and not out.exists()  # the data set is at 10 Å: was ignored
    assert main([*cmd, "--rotations", "100", "--iterations", "2"]) == 0
    summary = json.loads((out / "averages.json").read_text())
    assert (summary["rotations"], summary["iterations"]) == (100, 2)
    assert all(len(row["iterations"]) == 2 for row in summary["clusters"].values())
    assert set(summary["clusters"]) == {"1", "2"}
    for c in ("1", "2"):
        row = summary["clusters"][c]
        assert row["particles"] == 6 and row["started_from"] == "pick angles" and row["resolution_A"] >= 20.0
        average, vs = read_mrc(out / f"cluster{c}_average.mrc")
        assert average.shape == (24, 24, 24) and vs == 10.0
        assert (out / "figures" / f"average_c{c}.png").exists()
    with open(out / "fsc.csv", newline="") as fh:
        shells = [row for row in csv.DictReader(fh) if row["cluster"] == "1"]
    assert len(shells) == 12 and float(shells[1]["frequency_per_A"]) == pytest.approx(1 / 240)
    fsc, measured, null = (np.array([float(r[k]) for r in shells]) for k in ("fsc", "fsc_measured", "fsc_null"))
    np.testing.assert_allclose(fsc, corrected_fsc(measured, null), atol=1e-12)  # the curve the resolution is read on
    assert resolution_at(fsc, 10.0, 24) == pytest.approx(summary["clusters"]["1"]["resolution_A"], abs=0.05)
    assert main(cmd) == 1  # never overwrites without --overwrite
    assert main([*cmd, "--clusters", "2", "--rotations", "100", "--iterations", "1", "--overwrite"]) == 0
    assert set(json.loads((out / "averages.json").read_text())["clusters"]) == {"2"}  # cluster 1's files, gone:
    gone = ["cluster1_average.mrc", "cluster1_half1.mrc", "cluster1_half2.mrc", "figures/average_c1.png"]
    assert not any((out / name).exists() for name in gone)  # they sat beside cluster 2's as if this run's
    assert (out / "cluster2_half1.mrc").exists() and (out / "figures" / "average_c2.png").exists()
    assert main(["average", str(data / "objects.xml"), "--out", str(tmp_path / "x")]) == 1  # no source, no data set


def test_clusters_too_small_to_average_are_refused_before_any_extraction(tmp_path, capsys):
    """Every cluster under 4 particles (or --max-particles under 4) ran to an averages.json with no average in it."""
    objl = [new_object(1 + i // 3, 20, 20, 20, tomo_idx=0, source=str(tmp_path / "absent.mrc")) for i in range(6)]
    write_objl(objl, tmp_path / "clusters_k2.xml")  # clusters of 3: no tomogram needed to refuse them
    out = tmp_path / "avg"
    assert main(["average", str(tmp_path / "clusters_k2.xml"), "--out", str(out)]) == 1 and not out.exists()
    assert "no cluster asked has the 4 particles an average needs (largest: 3)" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "clusters_k2.xml"), "--out", str(out), "--max-particles", "3"]) == 1
    assert "max_particles 3: an average needs at least 4" in capsys.readouterr().err and not out.exists()


def test_a_star_file_of_clusters_is_refused_naming_the_object_list_beside_it(tmp_path, capsys):
    """cluster's .star (or the user's own *_particles.star) names tomograms, not their files: it was read as XML
    ("not a valid XML file"); now the object list written beside it is named."""
    objl = [new_object(1 + i // 4, 20, 20, 20, tomo_idx=0, source=str(tmp_path / "t.mrc")) for i in range(8)]
    write_objl(objl, tmp_path / "clusters_k2.xml")
    write_star(objl, tmp_path / "clusters_k2.star")
    for name in ("clusters_k2.star", "clusters_k2_particles.star"):
        (tmp_path / name).write_text((tmp_path / "clusters_k2.star").read_text())
        assert main(["average", str(tmp_path / name), "--out", str(tmp_path / "avg")]) == 1
        err = capsys.readouterr().err
        assert f"{name}: a STAR file" in err and f"give {tmp_path / 'clusters_k2.xml'}, written beside it" in err
    (tmp_path / "clusters_k2.xml").unlink()
    assert main(["average", str(tmp_path / "clusters_k2.star"), "--out", str(tmp_path / "avg")]) == 1
    assert "give the clusters_k{K}.xml that cluster wrote" in capsys.readouterr().err
    assert not (tmp_path / "avg").exists()


def test_cluster_average_puts_the_averages_in_the_report(tmp_path):
    data = tmp_path / "sim"
    args = ["simulate", "--structures", "builtin:ring", "builtin:barrel", "--per-class", "6", "--workers", "1"]
    assert main([*args, "--out", str(data), "--seed", "2", "--no-negative"]) == 0
    emb = tmp_path / "e.h5"
    assert main(["embed", "--dataset", str(data / "dataset.h5"), "--out", str(emb), "--precision", "float32"]) == 0
    out = tmp_path / "c"
    cmd = ["cluster", str(emb), "--k", "2", "--average", "--dataset", str(data / "dataset.h5"), "--out", str(out)]
    assert main([*cmd, "--rotations", "5"]) == 1 and not out.exists()  # refused before any clustering
    assert main([*cmd, "--rotations", "100", "--iterations", "2"]) == 0
    summary = json.loads((out / "averages_k2" / "averages.json").read_text())
    assert (summary["rotations"], summary["iterations"]) == (100, 2)  # the search asked for
    sizes = np.bincount([o["label"] for o in read_objl(out / "clusters_k2.xml")])
    assert set(summary["clusters"]) == {str(c) for c in range(len(sizes)) if sizes[c] >= 4}  # 4: two per half
    assert all(summary["clusters"][c]["of"] == sizes[int(c)] for c in summary["clusters"])
    page = (out / "report.html").read_text()
    for c in summary["clusters"]:
        assert f"Cluster {c} average" in page
