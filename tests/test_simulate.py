"""The simulator's physics: missing wedge, faithful full-range reconstruction, CTF zeros, SNR, orientations,
determinism, structures from atomic models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from deepfinder_unsup.geometry import (
    deepfinder_angles,
    random_rotations,
    rotate_volume,
    rotation_from_deepfinder_angles,
)
from deepfinder_unsup.io.files import InputError
from deepfinder_unsup.simulate.config import SimConfig, fixed_config
from deepfinder_unsup.simulate.dataset import simulate_dataset
from deepfinder_unsup.simulate.microscope import (
    Microscope,
    acquire_and_reconstruct,
    ctf_zeros,
    dose_symmetric_order,
    image_filter,
    project,
)
from deepfinder_unsup.simulate.scene import StructureLibrary, place_particle, simulate_subtomogram
from deepfinder_unsup.simulate.structures import builtin_structure, load_structures, structure_from_map

from .conftest import shared_file

IDEAL = dict(defocus_um=1e-6, amplitude_contrast=1.0, total_dose=1e-6, bfactor=0.0)  # CTF = -1, no damage


def _particle_volume(n=56, seed=0):
    rng = np.random.default_rng(seed)
    vol = np.zeros((n, n, n), np.float32)
    rot = random_rotations(1, rng)[0]
    place_particle(vol, builtin_structure("dumbbell").density, rot, np.full(3, (n - 1) / 2))
    return vol


def test_missing_wedge_holds_little_power():
    vol = _particle_volume()
    rec = acquire_and_reconstruct(
        vol, Microscope(tilt_min=-60, tilt_max=60, tilt_step=2, **IDEAL), 10.0, 40, None, np.random.default_rng(0)
    )
    power = np.abs(np.fft.fftshift(np.fft.fftn(rec))) ** 2
    k = np.fft.fftshift(np.fft.fftfreq(40))
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    radius = np.sqrt(kx**2 + ky**2 + kz**2)
    band = (radius > 0.05) & (radius < 0.4) & (np.hypot(kx, kz) > 0.04)
    angle = np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))  # 0 = along x, 90 = along the beam (z)
    inside = power[band & (angle > 65)].mean()
    outside = power[band & (angle < 55)].mean()
    assert inside / outside < 0.05


def test_full_range_reconstruction_matches_the_rotated_map():
    n, crop = 56, 40
    vol = _particle_volume(n, seed=3)
    full = Microscope(tilt_min=-90, tilt_max=89, tilt_step=1, **IDEAL)
    rec = acquire_and_reconstruct(vol, full, 10.0, crop, None, np.random.default_rng(0))
    s = (n - crop) // 2
    truth = vol[s : s + crop, s : s + crop, s : s + crop]
    r = np.corrcoef(-rec.ravel(), truth.ravel())[0, 1]  # amplitude contrast 1: CTF = -1 (dark protein)
    assert r > 0.9


def test_ctf_zeros_fall_where_the_defocus_puts_them():
    rng = np.random.default_rng(0)
    vs, n, defocus = 4.0, 128, 2.0
    mic = Microscope(
        tilt_min=0, tilt_max=0, tilt_step=1, defocus_um=defocus, cs_mm=0.0, amplitude_contrast=0.07, total_dose=1e-6
    )
    image = project(rng.standard_normal((8, n, n)).astype(np.float32), [0.0])
    spec = np.fft.rfft2(image[0]) * image_filter(mic, n, n, vs)[0]
    ky = np.fft.fftfreq(n, vs)
    kx = np.fft.rfftfreq(n, vs)
    k = np.sqrt(ky[:, None] ** 2 + kx[None] ** 2)
    edges = np.arange(0, 0.125, 1 / (n * vs))
    which = np.digitize(k.ravel(), edges)
    profile = np.array([(np.abs(spec.ravel()[which == i]) ** 2).mean() for i in range(1, len(edges))])
    centres = (edges[:-1] + edges[1:]) / 2
    minima = [
        centres[i]
        for i in range(2, len(profile) - 2)
        if profile[i] == profile[i - 2 : i + 3].min() and profile[i] < 0.05 * profile.max()
    ]
    predicted = ctf_zeros(defocus, 300.0, 0.07, k_max=0.12)
    assert len(minima) == len(predicted) >= 3
    np.testing.assert_allclose(minima, predicted, atol=1.0 / (n * vs))


@pytest.mark.parametrize("snr,sim_vs", [(0.05, 10.0), (0.5, 13.68)])
def test_measured_snr_matches_the_requested_one(snr, sim_vs):
    lib = StructureLibrary([builtin_structure("ring")])
    cfg = fixed_config(snr=snr, sim_voxel_size=sim_vs, n_neighbours=2, p_membrane=1.0)
    noisy, clean, _ = simulate_subtomogram(lib, 1, cfg, np.random.default_rng(7), return_clean=True)
    measured = clean.var() / (noisy - clean).var()
    assert measured == pytest.approx(snr, rel=0.10)


def test_orientations_are_uniform_and_proper():
    rots = random_rotations(4000, np.random.default_rng(0))
    mats = rots.as_matrix()
    np.testing.assert_allclose(np.linalg.det(mats), 1.0, atol=1e-9)
    np.testing.assert_allclose(mats @ np.transpose(mats, (0, 2, 1)), np.broadcast_to(np.eye(3), mats.shape), atol=1e-9)
    z_axis = mats[:, :, 2]  # image of the z axis: uniform on the sphere
    assert stats.kstest(z_axis[:, 2], stats.uniform(-1, 2).cdf).pvalue > 0.01
    azimuth = np.arctan2(z_axis[:, 1], z_axis[:, 0])
    assert stats.kstest(azimuth, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01
    angle = rots.magnitude()  # Haar measure: density of the rotation angle is (1 - cos w) / pi
    assert stats.kstest(angle, lambda w: (w - np.sin(w)) / np.pi).pvalue > 0.01
    angles = deepfinder_angles(rots)
    back = rotation_from_deepfinder_angles(angles[:, 0], angles[:, 1], angles[:, 2]).as_matrix()
    np.testing.assert_allclose(back, mats, atol=1e-9)


def test_recorded_angles_rotate_the_reference_onto_the_particle():
    lib = StructureLibrary([builtin_structure("corner_right")])
    cfg = fixed_config(snr=None, shift_max=0.0)
    cfg.snr = 1e6
    _, clean, info = simulate_subtomogram(lib, 1, cfg, np.random.default_rng(5), return_clean=True)
    rot = rotation_from_deepfinder_angles(*info.angles)
    expected = rotate_volume(builtin_structure("corner_right").density, rot, out_shape=(40, 40, 40))
    assert np.corrcoef(-clean.ravel(), expected.ravel())[0, 1] > 0.6


def test_same_seed_same_data_and_classes_balanced():
    structs = [builtin_structure("ring"), builtin_structure("globule")]
    cfg = SimConfig()
    a, objl_a, names = simulate_dataset(structs, 3, cfg, seed=4, n_workers=1, progress=False)
    b, objl_b, _ = simulate_dataset(structs, 3, cfg, seed=4, n_workers=2, progress=False)
    np.testing.assert_array_equal(a, b)
    assert objl_a == objl_b
    c, _, _ = simulate_dataset(structs, 3, cfg, seed=5, n_workers=1, progress=False)
    assert not np.allclose(a, c)
    assert names == {0: "negative", 1: "ring", 2: "globule"}
    assert sorted(o["label"] for o in objl_a) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a.shape == (9, 40, 40, 40)


def test_dose_symmetric_order():
    angles = np.arange(-6, 7, 3.0)  # -6 -3 0 3 6
    assert list(angles[dose_symmetric_order(angles)]) == [0, 3, 6, -3, -6]


def test_mirror_shapes_are_mirror_images():
    right, left = builtin_structure("helix_right").density, builtin_structure("helix_left").density
    np.testing.assert_allclose(left[:, ::-1, :], right, atol=1e-4)
    assert np.corrcoef(left.ravel(), right.ravel())[0, 1] < 0.9


@pytest.mark.parametrize("name", ["1bxn", "1qvr", "1s3x", "1u6g", "2cg9", "3cf3", "3d2f", "3gl1", "3h84", "3qm1"])
def test_atomic_model_density_matches_the_shared_map(name):
    """The shared 10 Å maps were computed from the deposited models (asymmetric unit): measured r = 0.99-1.00."""
    pytest.importorskip("gemmi")
    from deepfinder_unsup.extract import crop_or_pad
    from deepfinder_unsup.simulate.structures import atomic_density, standardise_density

    atoms = standardise_density(atomic_density(shared_file(f"structures/pdb/{name}.pdb"), 10.0, assembly=False))
    ref = structure_from_map(shared_file(f"structures/maps_10A/{name}.mrc"), 10.0).density
    n = max(atoms.shape[0], ref.shape[0])
    corr = np.corrcoef(crop_or_pad(atoms, n).ravel(), crop_or_pad(ref, n).ravel())[0, 1]
    assert corr > 0.98


def test_biological_assembly_of_1bxn_is_the_whole_l8s8():
    pytest.importorskip("gemmi")
    from deepfinder_unsup.simulate.structures import atomic_density

    path = shared_file("structures/pdb/1bxn.pdb")
    half, whole = atomic_density(path, 10.0, assembly=False), atomic_density(path, 10.0, assembly=True)
    assert whole.sum() / half.sum() == pytest.approx(2.0, rel=0.02)


def test_keras_source_yields_balanced_fresh_batches():
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate.keras_source import SimulatedBatches

    source = SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")],
        fixed_config(),
        batch_size=30,
        steps_per_epoch=2,
        seed=0,
    )
    x, y = source[0]
    assert x.shape == (30, 40, 40, 40, 1) and y.shape == (30, 3)
    np.testing.assert_array_equal(y.sum(axis=1), 1)
    assert y.sum(axis=0).min() >= 4  # each of the 3 classes drawn (uniform: 10 expected each)
    x2, _ = source[0]
    np.testing.assert_array_equal(x, x2)  # deterministic per (seed, epoch, index)
    source.on_epoch_end()
    assert not np.allclose(source[0][0], x)  # a new epoch simulates new data


def test_reused_batches_are_wedge_symmetric_views_of_earlier_ones_cached_or_not(tmp_path):
    """``train --reuse 2``: items 4-7 are items 0-3 again, each sub-tomogram turned by a 180-degree rotation that
    keeps the wedge (never the same view), labels kept; items 8-11 fresh. The cache that passes batches between
    workers changes nothing (the same arrays made again without it) and is emptied by its last use."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate.keras_source import SimulatedBatches, replayed_item
    from deepfinder_unsup.volume import wedge_symmetric_views

    assert [replayed_item(i, 2) for i in range(12)] == [None] * 4 + [0, 1, 2, 3] + [None] * 4
    assert [replayed_item(i, 3) for i in range(12)] == [None] * 4 + [0, 1, 2, 3, 0, 1, 2, 3]
    assert all(replayed_item(i, 1) is None for i in range(12))

    def source(cache):
        batches = SimulatedBatches(
            [builtin_structure("ring"), builtin_structure("globule")], fixed_config(), 6, steps_per_epoch=12, seed=3
        )
        batches.reuse, batches.cache_dir = 2, cache
        return batches

    cached = source(str(tmp_path))
    items = {i: cached[i] for i in (0, 4, 8)}
    assert [f.name for f in tmp_path.iterdir()] == ["3_0_8.pkl"]  # item 0's removed by its last use, item 4
    cached.on_epoch_end()
    assert list(tmp_path.iterdir()) == []  # item 8's would be used at 12: past the epoch's end
    (x0, y0), (x4, y4), (x8, _) = items[0], items[4], items[8]
    np.testing.assert_array_equal(y4, y0)
    particles = [(a, b) for a, b in zip(x0[..., 0], x4[..., 0]) if a.std() > 0]
    assert len(particles) >= 2
    for a, b in particles:
        turned = [np.array_equal(view[0], b) for view in wedge_symmetric_views(a[None])]
        assert turned[0] is False and sum(turned) == 1  # views[0] is the identity
    assert not np.allclose(x8, x0)
    uncached = source(None)
    for i in (0, 4):
        np.testing.assert_array_equal(uncached[i][0], items[i][0])


def record_simulated_structures(monkeypatch) -> list[str]:
    """The names of the structures the Keras source simulates from now on, in order ('negative' for label 0)."""
    from deepfinder_unsup.simulate import keras_source

    simulated: list[str] = []
    real = keras_source.simulate_subtomogram

    def recording(library, label, config, rng):
        simulated.append(library.names[label - 1] if label else "negative")
        return real(library, label, config, rng)

    monkeypatch.setattr(keras_source, "simulate_subtomogram", recording)
    return simulated


def test_fresh_structures_fill_a_share_of_the_pairs_once_each_with_zero_class_rows_and_weight(monkeypatch):
    """``train --fresh-structures 0.5``: in a batch of 4 pairs, 2 pairs are two sub-tomograms of one procedural
    structure from the reserved seeds (not a class: zero class row, sample weight 0), the other 2 of drawn classes
    (their one-hot rows, weight 1); row i and row i + 4 show the same structure; the next batch draws other
    structures; the library is as before (nothing appended, no cache entry left)."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import dataset, keras_source
    from deepfinder_unsup.simulate.procedural import procedural_name

    simulated = record_simulated_structures(monkeypatch)
    source = keras_source.SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")], fixed_config(), batch_size=8, seed=1
    )
    source.instance_pairs, source.fresh_share = True, 0.5
    x, y, w = source[0]
    assert x.shape == (8, 40, 40, 40, 1)
    np.testing.assert_array_equal(w, [1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(y.sum(axis=1), w)  # one-hot rows for classes, zero rows for the others
    np.testing.assert_array_equal(y[:4], y[4:])
    assert simulated[:4] == simulated[4:]  # each pair: one structure (the classes', then the fresh ones)
    low, high = dataset.FRESH_SEEDS
    seeds = [int(name.removeprefix("proc")) for name in simulated[2:4]]
    assert [procedural_name(seed) for seed in seeds] == simulated[2:4] and len(set(seeds)) == 2
    assert all(low <= seed < high for seed in seeds)
    assert set(simulated[:2]) <= {"ring", "globule", "negative"}
    first = set(simulated[2:4])
    simulated.clear()
    source[1]
    assert not first & set(simulated[2:4])  # drawn once
    assert source.library.names == ["ring", "globule"] and all(k[0] < 2 for k in source.library._cache)
    source.fresh_share = 0.0
    assert len(source[0]) == 2  # without fresh structures: (x, y) as before


def test_a_mass_band_draws_structures_close_in_mass_and_without_it_they_range_widely():
    """``draw_fresh_seeds`` with a band b: every structure within |ln m / m_first| <= b of the first (mass from
    the molecule itself, not its seed's draw); without a band the same number range over far more (random
    pairs: a median |ln ratio| near 1); a band too narrow for the candidates is filled with the nearest; distinct
    seeds in the reserved range either way."""
    from deepfinder_unsup.simulate.dataset import FRESH_SEEDS, draw_fresh_seeds
    from deepfinder_unsup.simulate.procedural import procedural_molecule

    def spread(seeds):
        log_mass = np.log([procedural_molecule(int(s)).mass_kda for s in seeds])
        return np.abs(log_mass[1:] - log_mass[0])

    rng = np.random.default_rng(3)
    banded = [draw_fresh_seeds(6, rng, mass_band=0.3) for _ in range(8)]
    assert all(len(set(s.tolist())) == 6 and spread(s).max() <= 0.3 for s in banded)
    assert all(FRESH_SEEDS[0] <= seed < FRESH_SEEDS[1] for s in banded for seed in s)
    free = np.concatenate([spread(draw_fresh_seeds(6, rng)) for _ in range(8)])
    assert np.median(free) > 0.5 and free.max() > 1.5
    narrow = draw_fresh_seeds(6, np.random.default_rng(5), mass_band=1e-6)
    assert len(set(narrow.tolist())) == 6 and spread(narrow).max() < 0.05  # the nearest of 384 candidates
    with pytest.raises(ValueError, match="non-negative log ratio"):
        draw_fresh_seeds(6, rng, mass_band=-0.1)


def test_the_keras_source_draws_a_batchs_fresh_structures_within_its_mass_band_and_beside_mirrors(monkeypatch):
    """``train --fresh-mass-band``: the structures drawn once of each batch are within the band in mass, the
    classes' pairs are drawn as before; ``--fresh-mirrors``: the last of them are the first ones' mirror images;
    the source says both for the model card."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import keras_source
    from deepfinder_unsup.simulate.procedural import procedural_molecule

    simulated = record_simulated_structures(monkeypatch)
    source = keras_source.SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")], fixed_config(), batch_size=12, seed=2
    )
    source.instance_pairs, source.fresh_share, source.fresh_mass_band = True, 5 / 6, 0.2
    for item in range(2):
        simulated.clear()
        source[item]
        fresh = simulated[1:6]
        assert set(simulated[:1]) <= {"ring", "globule", "negative"} and simulated[:6] == simulated[6:]
        log_mass = np.log([procedural_molecule(int(name.removeprefix("proc"))).mass_kda for name in fresh])
        assert np.abs(log_mass - log_mass[0]).max() <= 0.2
        assert len(set(fresh)) == 5 and not any(name.endswith("-mirror") for name in fresh)
    assert "within ln 0.2 in mass" in source.describe()
    source.fresh_mirrors = 0.8  # 4 of the 5 in mirror pairs: the last 2 are the first 2 mirrored
    simulated.clear()
    source[2]
    fresh = simulated[1:6]
    assert fresh[3:] == [name + "-mirror" for name in fresh[:2]] and len(set(fresh)) == 5
    assert simulated[:6] == simulated[6:] and "0.8 of them beside their mirror image" in source.describe()


def test_the_keras_source_puts_membrane_bound_copies_beside_drawn_once_structures_after_their_mirrors(monkeypatch):
    """``train --fresh-bound``: the last of a batch's structures drawn once are the originals' copies bound to a
    membrane (named NAME@membrane, binding ``surface``, so the scene places a bilayer under them), after the
    mirror images and of other originals; both views of a pair are the same structure; the source says it."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import keras_source

    simulated: list[tuple[str, str]] = []
    real = keras_source.simulate_subtomogram

    def recording(library, label, config, rng):
        struct = library.structures[label - 1] if label else None
        simulated.append((struct.name, struct.binding) if struct else ("negative", "free"))
        return real(library, label, config, rng)

    monkeypatch.setattr(keras_source, "simulate_subtomogram", recording)
    source = keras_source.SimulatedBatches([builtin_structure("ring")], fixed_config(), batch_size=12, seed=2)
    source.instance_pairs, source.fresh_share, source.fresh_bound = True, 5 / 6, 0.8  # 5 drawn once: 2 bound
    source[0]
    names, bindings = zip(*simulated[1:6])
    assert names[3:] == tuple(name + "@membrane" for name in names[:2]) and len(set(names)) == 5
    assert bindings == ("free",) * 3 + ("surface",) * 2 and simulated[:6] == simulated[6:]
    assert "0.8 of them beside their membrane-bound copy" in source.describe()
    source.fresh_mirrors = 0.4  # one mirror pair: it comes first, the one bound copy is of the next original
    simulated.clear()
    source[1]
    names = tuple(name for name, _ in simulated[1:6])
    assert names[3:] == (names[0] + "-mirror", names[1] + "@membrane") and simulated[:6] == simulated[6:]
    assert keras_source.fresh_companion_counts(5, 1.0, 1.0) == (2, 0)  # half are mirrors already: no bound copy


def test_fresh_pairs_are_two_draws_of_one_structure_drawn_once(monkeypatch):
    """``simulate_fresh_pairs`` (the GPU script's fresh share): pair j is two sub-tomograms of one procedural
    structure whose seed lies in FRESH_SEEDS, every pair another structure, two different draws (not a copy),
    and the library is as it was afterwards."""
    from deepfinder_unsup.simulate import dataset
    from deepfinder_unsup.simulate.procedural import procedural_name

    simulated = []
    real = dataset.simulate_subtomogram

    def recording(library, label, config, rng):
        simulated.append(library.names[label - 1])
        return real(library, label, config, rng)

    monkeypatch.setattr(dataset, "simulate_subtomogram", recording)
    library = StructureLibrary([builtin_structure("ring")])
    a, b = dataset.simulate_fresh_pairs(library, 3, fixed_config(), np.random.default_rng(4))
    assert a.shape == b.shape == (3, 40, 40, 40)
    assert simulated[0::2] == simulated[1::2] and len(set(simulated)) == 3
    low, high = dataset.FRESH_SEEDS
    seeds = [int(name.removeprefix("proc")) for name in simulated[0::2]]
    assert [procedural_name(seed) for seed in seeds] == simulated[0::2]
    assert all(low <= seed < high for seed in seeds)
    assert not np.allclose(a, b)
    assert library.names == ["ring"] and all(key[0] == 0 for key in library._cache)


def test_map_weight_draws_classes_from_files_that_many_times_as_often():
    """``train --map-weight 3``: a class read from a map file is drawn 3x as often as one made by code or the
    negatives (chi-square against those expected frequencies, and against uniform); weight 1 keeps the uniform
    draw, the same labels for the same seed as before weights existed; ``--negative-weight`` weighs class 0 alone."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate.dataset import balanced_labels
    from deepfinder_unsup.simulate.keras_source import SimulatedBatches
    from deepfinder_unsup.simulate.structures import Structure, made_by_code

    r = np.sqrt(((np.mgrid[:12, :12, :12] - 6.0) ** 2).sum(axis=0))
    from_file = Structure("mapblob", (r < 4).astype(np.float32), 10.0)
    structures = [builtin_structure("ring"), from_file, builtin_structure("globule")]
    assert [made_by_code(s) for s in structures] == [True, False, True]
    source = SimulatedBatches(structures, fixed_config(), batch_size=8, map_weight=3.0)
    np.testing.assert_array_equal(source.labels, [0, 1, 2, 3])  # 0: the negatives
    np.testing.assert_array_equal(source.draw_weights, [1, 1, 3, 1])
    assert "3x as often" in source.describe()
    drawn = balanced_labels(source.labels, 12000, np.random.default_rng(0), source.draw_weights)
    counts = np.bincount(drawn, minlength=4)
    assert stats.chisquare(counts, 12000 * np.array([1, 1, 3, 1]) / 6).pvalue > 0.01
    assert stats.chisquare(counts).pvalue < 1e-6
    assert SimulatedBatches(structures, fixed_config(), batch_size=8).draw_weights is None
    both = SimulatedBatches(structures, fixed_config(), batch_size=8, map_weight=3.0, negative_weight=8.0)
    np.testing.assert_array_equal(both.draw_weights, [8, 1, 3, 1])  # the negatives' own weight
    assert "3x as often" in both.describe() and "the negatives drawn 8x as often" in both.describe()
    negatives_only = SimulatedBatches(structures, fixed_config(), batch_size=8, negative_weight=0.5)
    np.testing.assert_array_equal(negatives_only.draw_weights, [0.5, 1, 1, 1])
    assert "classes from files" not in negatives_only.describe()
    drawn = balanced_labels(both.labels, 13000, np.random.default_rng(1), both.draw_weights)
    assert stats.chisquare(np.bincount(drawn, minlength=4), 13000 * np.array([8, 1, 3, 1]) / 13).pvalue > 0.01
    np.testing.assert_array_equal(
        balanced_labels(source.labels, 50, np.random.default_rng(5)),
        source.labels[np.random.default_rng(5).integers(4, size=50)],
    )


@pytest.mark.parametrize("voxel_size", [7.0, 8.0, 10.0, 12.0, 13.68, 16.0])
def test_simulated_particle_sits_at_the_box_centre_at_any_pixel_size(voxel_size):
    """One centre convention (index n // 2) through placement, reconstruction crop, resampling and crop."""
    from scipy import ndimage

    from deepfinder_unsup.simulate.structures import Structure, standardise_density

    n, c = 31, 15
    z, y, x = np.meshgrid(*(np.arange(n) - c,) * 3, indexing="ij")
    sphere = ndimage.gaussian_filter(((x**2 + y**2 + z**2) <= 64).astype(np.float32), 1.0)
    lib = StructureLibrary([Structure("sphere", standardise_density(sphere), 10.0)])
    cfg = fixed_config(sim_voxel_size=voxel_size, tilt_min=-90, tilt_max=89, tilt_step=1, **IDEAL)
    _, clean, _ = simulate_subtomogram(lib, 1, cfg, np.random.default_rng(0), return_clean=True)
    density = np.clip(-clean, 0, None)  # CTF = -1: protein dark
    density *= density > 0.2 * density.max()
    assert np.allclose(ndimage.center_of_mass(density), 20.0, atol=0.1)


@pytest.mark.parametrize("n,box", [(31, 40), (32, 40), (50, 40), (51, 40), (41, 20)])
def test_crop_pad_and_resampling_keep_the_centre_voxel(n, box):
    from deepfinder_unsup.volume import box_centre, crop_or_pad, resample_volume

    vol = np.zeros((n, n, n), np.float32)
    c = box_centre(n)
    vol[c, c, c] = 1.0
    out = crop_or_pad(vol, box)
    assert np.unravel_index(np.argmax(out), out.shape) == (box // 2,) * 3
    res = resample_volume(vol, 10.0, 7.0, order=1)
    peak = np.unravel_index(np.argmax(res), res.shape)
    assert peak == (box_centre(res.shape[0]),) * 3


def _membrane_contrast(mic, normal_xyz) -> float:
    """Standard deviation of the noise-free reconstruction of a flat bilayer through the box centre."""
    from deepfinder_unsup.simulate.microscope import reconstruct_signal_and_noise
    from deepfinder_unsup.simulate.scene import add_membrane

    volume = np.zeros((48, 48, 48), np.float32)
    add_membrane(volume, 10.0, [24, 24, 24], normal_xyz, 3000)
    clean, _ = reconstruct_signal_and_noise(volume, mic, 10.0, 40, np.random.default_rng(1))
    return float(clean.std())


def test_a_membrane_facing_the_beam_vanishes_in_the_missing_wedge():
    """A flat bilayer's transform is a line along its normal: within 90 - 45 degrees of the beam (z) that line
    lies in the missing wedge of a +-45 degree series (tilt axis y) and the membrane all but disappears; a
    normal along the tilt axis is always sampled. So a bound particle's membrane is invisible in about half of
    all orientations, a limit for any feature of binding."""
    mic = fixed_config(tilt_min=-45, tilt_max=45, tilt_step=3, defocus_um=3.0).microscope(np.random.default_rng(0))

    def contrast(normal_xyz) -> float:
        return _membrane_contrast(mic, normal_xyz)

    along_tilt_axis = contrast([0, 1, 0])
    assert contrast([0, 0, 1]) < 0.1 * along_tilt_axis  # facing the beam: in the wedge
    assert contrast([np.sin(np.deg2rad(30)), 0, np.cos(np.deg2rad(30))]) < 0.3 * along_tilt_axis
    assert contrast([np.sin(np.deg2rad(60)), 0, np.cos(np.deg2rad(60))]) > 0.5 * along_tilt_axis


def test_which_membranes_an_asymmetric_tilt_series_sees(rng):
    """``sampled_by_tilts`` against reconstructions: with tilts from -30 to +50 degrees a membrane whose normal
    is 45 degrees from x towards +z keeps its contrast and the mirror one (towards -z) loses it, as the
    function says; over random normals the fraction seen is the tilt range over 180 degrees (the angle in the
    x-z plane of a uniform direction is uniform)."""
    from deepfinder_unsup.simulate.microscope import sampled_by_tilts

    mic = fixed_config(tilt_min=-30, tilt_max=50, tilt_step=2, defocus_um=3.0).microscope(np.random.default_rng(0))

    def contrast(normal_xyz) -> float:
        return _membrane_contrast(mic, normal_xyz)

    towards_plus_z, towards_minus_z = np.array([1.0, 0.0, 1.0]) / np.sqrt(2), np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    assert sampled_by_tilts(towards_plus_z, -30, 50) and not sampled_by_tilts(towards_minus_z, -30, 50)
    assert contrast(towards_minus_z) < 0.3 * contrast(towards_plus_z)
    assert sampled_by_tilts([0.05, 1.0, 0.05], -30, 50)  # along the tilt axis: in every slice
    normals = rng.standard_normal((4000, 3))
    seen = np.mean([sampled_by_tilts(n, -45, 45, along_axis=0.0) for n in normals])
    assert seen == pytest.approx(0.5, abs=0.03)
    seen = np.mean([sampled_by_tilts(n, -60, 60, along_axis=0.0) for n in normals])
    assert seen == pytest.approx(2 / 3, abs=0.03)


def test_simulate_writes_one_mrc_per_sub_tomogram_when_asked(tmp_path):
    """``simulate --mrc`` (it once always crashed): one MRC per sub-tomogram, named by index and class, holding
    the data set's volume at its voxel size, and named in the object list."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.io import read_dataset, read_mrc

    args = ["simulate", "--structures", "builtin:ring", "--per-class", "2", "--workers", "1", "--mrc"]
    assert main([*args, "--out", str(tmp_path / "s")]) == 0
    ds = read_dataset(tmp_path / "s" / "dataset.h5")
    files = sorted((tmp_path / "s" / "mrc").glob("*.mrc"))
    assert [f.name for f in files] == [f"{i:06d}_{ds.class_names[o['label']]}.mrc" for i, o in enumerate(ds.objl)]
    assert [o["mrc"] for o in ds.objl] == [f"mrc/{f.name}" for f in files]
    for f, vol in zip(files, ds.subtomograms):
        data, vs = read_mrc(f)
        assert vs == pytest.approx(ds.voxel_size) and np.array_equal(data, vol)


def test_simulation_pool_ends_without_signalling_its_workers():
    """The pool's workers leave on the end-of-work message: with SIGTERM ignored (as a worker that loses the
    signal), ``simulate`` still returns. ``Pool.__exit__`` SIGTERMs them instead, and waited forever (session 12)."""
    code = (
        "import signal, numpy as np\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "from deepfinder_unsup.simulate.config import SimConfig\n"
        "from deepfinder_unsup.simulate.dataset import simulate_dataset\n"
        "from deepfinder_unsup.simulate.structures import builtin_structure\n"
        "v, _, _ = simulate_dataset([builtin_structure('ring')], 4, SimConfig(), seed=1, n_workers=2, progress=False)\n"
        "print(v.shape[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8"]  # 4 rings + 4 negatives


def test_a_map_file_named_like_a_built_in_shape_counts_as_read_from_a_file(tmp_path):
    """``--map-weight`` weighs what a class was made from, not its name: ``ring.mrc`` is a map file (the old
    rule matched names against the built-in shapes and called it code); the flag survives resampling and the
    membrane-bound copy, and procedural seeds count as code at every voxel size."""
    from deepfinder_unsup.io.mrc import write_mrc
    from deepfinder_unsup.simulate.procedural import procedural_structures
    from deepfinder_unsup.simulate.structures import made_by_code

    write_mrc(builtin_structure("ring", 10.0).density, tmp_path / "ring.mrc", voxel_size=10.0)
    from_file = structure_from_map(tmp_path / "ring.mrc", 10.0)
    assert from_file.name == "ring"
    assert not made_by_code(from_file)
    assert not made_by_code(from_file.at_voxel_size(13.0))
    assert not made_by_code(from_file.membrane_bound())
    built_in = builtin_structure("ring", 10.0)
    assert made_by_code(built_in) and made_by_code(built_in.at_voxel_size(13.0).membrane_bound())
    seed = procedural_structures(1, first_seed=7)[0]
    assert made_by_code(seed) and made_by_code(seed.at_voxel_size(12.0, np.random.default_rng(0), wobble=True))


def _noise_power(cfg, label: int, n: int) -> float:
    """Mean variance of (noisy - clean) over ``n`` boxes of class ``label`` (un-normalised volumes)."""
    lib = StructureLibrary([builtin_structure("globule", 10.0)])
    powers = []
    for seed in range(n):
        noisy, clean, _ = simulate_subtomogram(lib, label, cfg, np.random.default_rng(seed), return_clean=True)
        powers.append(float((noisy - clean).var()))
    return float(np.mean(powers))


def test_the_snr_of_the_particle_leaves_the_noise_as_it_is_whatever_else_the_box_holds():
    """``snr_reference: particle``: noise is set by the central particle's own signal, so neighbours and a
    membrane in the box add signal, not noise (as in a tomogram, where the dose sets the noise); an empty
    negative box gets the noise a particle's would (a random structure's power). ``box`` (the default, the
    SNR of everything in the box) raises the noise with the crowding; a negative box with nothing in it has no
    signal to set its noise by and gets a particle's noise too (until session 47 it was all zeros: no noise,
    no tomogram looks like that, and a clustering told such negatives apart for free)."""
    busy = dict(n_neighbours=4, p_membrane=1.0, background=0.3)
    particle = _noise_power(fixed_config(snr_reference="particle"), 1, 8)
    assert _noise_power(fixed_config(snr_reference="particle", **busy), 1, 8) == pytest.approx(particle, rel=0.2)
    assert _noise_power(fixed_config(snr_reference="particle"), 0, 8) == pytest.approx(particle, rel=0.2)
    box = _noise_power(fixed_config(), 1, 8)
    assert box == pytest.approx(particle, rel=0.05)  # alone in the box, the two references agree
    assert _noise_power(fixed_config(**busy), 1, 8) > 2 * box
    assert _noise_power(fixed_config(), 0, 8) == pytest.approx(particle, rel=0.2)
    with pytest.raises(InputError, match="snr_reference"):
        fixed_config(snr_reference="tomogram")


def test_mix_at_snr_sets_the_ratio_of_the_reference_signal_to_the_noise():
    from deepfinder_unsup.simulate.microscope import mix_at_snr

    rng = np.random.default_rng(0)
    particle, context, noise = rng.normal(size=(3, 20, 20, 20))
    noisy = mix_at_snr(particle + 3 * context, noise, 0.5, signal=particle)
    assert particle.var() / (noisy - particle - 3 * context).var() == pytest.approx(0.5, rel=1e-4)
    noisy = mix_at_snr(particle + 3 * context, noise, 0.5)
    assert (particle + 3 * context).var() / (noisy - particle - 3 * context).var() == pytest.approx(0.5, rel=1e-4)


def test_projection_built_at_once_equals_the_cached_blocks_bit_for_bit(rng):
    """A tilt series with alignment errors is projected by a matrix built at once (not cached); it must give
    exactly the products of the per-angle cached blocks the nominal schemes use, forwards and transposed (the
    back-projection), or simulated data would change with the path taken."""
    import scipy.sparse as sp

    from deepfinder_unsup.simulate import microscope

    for nz, nx, n_det in ((20, 20, 20), (17, 23, 29)):
        angles = tuple(round(float(a), 3) for a in np.arange(-60, 61, 4) + np.round(rng.normal(0, 0.5, 31), 2))
        blocks = sp.vstack([microscope._radon_block(nz, nx, a, n_det) for a in angles], format="csr")
        at_once = microscope.radon_matrix(nz, nx, angles, n_det)
        assert not isinstance(at_once, sp.csr_matrix)  # off the grid: the uncached path was taken
        planes = rng.standard_normal((nz * nx, 7)).astype(np.float32)
        sino = rng.standard_normal((len(angles) * n_det, 7)).astype(np.float32)
        assert np.array_equal(at_once @ planes, blocks @ planes)
        assert np.array_equal(at_once.T @ sino, blocks.T @ sino)
        assert (at_once != blocks).nnz == 0


@pytest.mark.parametrize("tilt_error_deg", [0.0, 0.7])
def test_volumes_reconstructed_together_equal_each_reconstructed_alone(tilt_error_deg, rng):
    """The scene and the particle alone go through one projector side by side (``reconstruct_together``): each
    must come out exactly as if reconstructed on its own, with the nominal (cached) and the misaligned
    (uncached) projector alike, and the noise must be the same draw."""
    from deepfinder_unsup.simulate.microscope import Microscope, reconstruct_together

    mic = Microscope(tilt_min=-50, tilt_max=60, tilt_step=5, tilt_error_deg=tilt_error_deg, tilt_error_pattern=3)
    scene, particle = rng.standard_normal((2, 30, 26, 30)).astype(np.float32)
    joint = reconstruct_together([scene, particle], mic, 10.0, 24, np.random.default_rng(1))
    alone = [reconstruct_together([v], mic, 10.0, 24, np.random.default_rng(1)) for v in (scene, particle)]
    assert len(joint) == 3 and joint[0].shape == (24, 24, 24)
    assert np.array_equal(joint[0], alone[0][0]) and np.array_equal(joint[1], alone[1][0])
    assert np.array_equal(joint[2], alone[0][1])
    assert not np.allclose(joint[0], joint[1])


def test_a_tomogram_is_as_noisy_whether_it_holds_few_particles_or_many():
    """A whole tomogram's SNR is its particles' (the signal inside their cubes), so the noise, which in a
    microscope the dose sets, does not fall as the particles thin out. With the whole volume's signal as the
    reference (before session 47) the tomogram with 3 particles was 1.8 times less noisy than the one with 10."""
    from deepfinder_unsup.simulate.scene import simulate_tomogram

    lib = StructureLibrary([builtin_structure("ring"), builtin_structure("globule")])
    noise = []
    for n in (3, 24):
        tomo, objl = simulate_tomogram(lib, (32, 96, 96), n, n_membranes=0, config=fixed_config(snr=0.2), seed=1)
        z, y, x = np.meshgrid(*[np.arange(s) for s in tomo.shape], indexing="ij")
        empty = np.ones(tomo.shape, bool)
        for o in objl:
            empty &= (x - o["x"]) ** 2 + (y - o["y"]) ** 2 + (z - o["z"]) ** 2 > 16**2
        assert empty.mean() > 0.3
        noise.append(float(tomo[empty].std()))
    assert len(objl) >= 3 * 3  # the second holds over three times as many
    assert noise[1] / noise[0] == pytest.approx(1.0, abs=0.15)


def test_particle_boxes_cover_each_particle_cube_and_stop_at_the_edges():
    from deepfinder_unsup.simulate.scene import particle_boxes

    mask = particle_boxes((10, 12, 14), [(np.array([2.0, 5.0, 7.0]), 2.0), (np.array([13.0, 0.0, 9.0]), 1.0)])
    assert mask[7, 5, 2] and mask[5, 3, 0] and mask[9, 7, 4] and not mask[9, 7, 5]  # x 0..4, y 3..7, z 5..9
    assert mask[9, 0, 13] and mask[8, 1, 12] and not mask[9, 2, 13]  # clipped at the far x edge and y = 0
    assert mask.sum() == 5 * 5 * 5 + 2 * 2 * 2


def test_a_stray_membrane_goes_beside_a_free_particle_only_where_the_box_has_room():
    """A particle filling the box (a 16-voxel box without margin: radius 10.4 of 8) gets no stray membrane even at
    p_membrane 1, the same box as at p_membrane 0 (it was numpy's "high - low < 0": training on small boxes with
    large structures failed at the first such draw); in a box with room, p_membrane 1 adds one."""
    library = StructureLibrary(load_structures(["builtin:ring"], 10.0))

    def clean(box: int, margin: int, p_membrane: float) -> np.ndarray:
        config = fixed_config(box_size=box, margin=margin, p_membrane=p_membrane)
        return simulate_subtomogram(library, 1, config, np.random.default_rng(4), return_clean=True)[1]

    assert np.array_equal(clean(16, 0, 1.0), clean(16, 0, 0.0))
    with_room = clean(48, 8, 1.0), clean(48, 8, 0.0)
    assert not np.allclose(*with_room)


def test_a_tomogram_too_small_for_its_particles_says_how_many_it_placed(caplog):
    """Particles with no free place, or larger than the tomogram, are left out and the count is said (they were
    dropped silently: 500 asked, 2 written); with ``fill`` the count is an upper bound and nothing is said."""
    import logging

    from deepfinder_unsup.simulate import scene

    lib = StructureLibrary([builtin_structure("ring")])  # radius 10.4 voxels at 10 Å
    quiet = fixed_config(snr=0.5)
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        _, objl = scene.simulate_tomogram(lib, (48, 48, 48), 40, n_membranes=0, config=quiet, seed=0)
    assert 0 < len(objl) < 40 and f"placed {len(objl)} of 40 particles: no room" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        _, filled = scene.simulate_tomogram(lib, (48, 48, 48), 40, n_membranes=0, config=quiet, seed=0, fill=True)
    assert [o["x"] for o in filled] == [o["x"] for o in objl] and "placed" not in caplog.text
    fine = fixed_config(snr=0.5, voxel_size=2.0)  # the ring 52 voxels across its radius: over half of 48
    with caplog.at_level(logging.WARNING, logger="deepfinder_unsup"):
        _, none = scene.simulate_tomogram(lib, (48, 48, 48), 2, n_membranes=0, config=fine, seed=0)
    assert none == [] and "placed 0 of 2 particles" in caplog.text  # was numpy's "high - low < 0"


def test_a_map_with_protein_dark_is_refused_and_a_noisy_bright_one_kept(tmp_path, rng):
    """A map with protein negative (an average of raw sub-tomograms) and a little noise was taken: its envelope came
    from the solvent's noise (a 95^3 box of noise for a 21^3 structure)."""
    from deepfinder_unsup.io.mrc import read_mrc, write_mrc

    density, vs = read_mrc(shared_file("structures/maps_10A/1bxn.mrc"))
    noise = 0.05 * density.std() * rng.standard_normal(density.shape)
    write_mrc(-density + noise, tmp_path / "dark.mrc", vs)
    with pytest.raises(InputError, match=r"dark\.mrc: the strongest density is negative .* invert the map"):
        structure_from_map(tmp_path / "dark.mrc", 10.0)
    write_mrc(density + noise, tmp_path / "bright.mrc", vs)
    reference = structure_from_map(shared_file("structures/maps_10A/1bxn.mrc"), 10.0).density
    assert structure_from_map(tmp_path / "bright.mrc", 10.0).density.shape == reference.shape


def test_one_acquisition_draws_each_microscope_parameter_once_within_its_range():
    """``one_acquisition``: every acquisition parameter becomes one value the ranged config could have drawn (in
    its range, or one of its choices); the other parameters are kept as they were; microscopes drawn from the
    result are the same whatever the generator (but for the tilt-error pattern), and another draw of the
    acquisition differs."""
    from deepfinder_unsup.simulate.config import ACQUISITION_FIELDS, one_acquisition, spec_bounds

    ranged = SimConfig()
    acquisitions = [one_acquisition(ranged, np.random.default_rng(seed)) for seed in range(8)]
    for acq in acquisitions:
        for name in ACQUISITION_FIELDS:
            spec, value = getattr(ranged, name), getattr(acq, name)
            assert not isinstance(value, (list, tuple, dict)), name
            if isinstance(spec, dict) and "choices" in spec:
                assert value in spec["choices"], name
            elif spec_bounds(spec) is not None:
                low, high = spec_bounds(spec)
                assert low <= value <= high, name
        others = {k: v for k, v in acq.to_dict().items() if k not in ACQUISITION_FIELDS}
        assert others == {k: v for k, v in ranged.to_dict().items() if k not in ACQUISITION_FIELDS}
    first, second = (acquisitions[0].microscope(np.random.default_rng(s)) for s in (1, 2))
    assert {**vars(first), "tilt_error_pattern": 0} == {**vars(second), "tilt_error_pattern": 0}
    assert len({acq.defocus_um for acq in acquisitions}) == 8  # a continuous range: eight draws, eight values


def configs_simulated_with(monkeypatch) -> list[SimConfig]:
    """The config of every sub-tomogram the on-the-fly source simulates from now on, in order."""
    from deepfinder_unsup.simulate import keras_source

    configs: list[SimConfig] = []
    real = keras_source.simulate_subtomogram

    def recording(library, label, config, rng):
        configs.append(config)
        return real(library, label, config, rng)

    monkeypatch.setattr(keras_source, "simulate_subtomogram", recording)
    return configs


def test_one_acquisition_per_batch_simulates_a_whole_batch_with_one_draw(monkeypatch):
    """``train --one-acquisition-per-batch``: every sub-tomogram of a batch (the classes' pairs and the drawn-once
    ones) is simulated with the same fixed-acquisition config, the next batch with another; without it, each
    gets the source's ranged config (each sub-tomogram draws its own microscope)."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import keras_source
    from deepfinder_unsup.simulate.config import ACQUISITION_FIELDS

    configs = configs_simulated_with(monkeypatch)
    ranged = fixed_config(defocus_um=[1.0, 6.0], snr={"log": [0.05, 1.0]}, tilt_max={"choices": [50, 60]})
    source = keras_source.SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")], ranged, batch_size=8, seed=1
    )
    source.instance_pairs, source.fresh_share, source.one_acquisition_per_batch = True, 0.5, True
    source[0]
    assert len(configs) == 8 and all(c is configs[0] for c in configs)
    assert isinstance(configs[0].defocus_um, float) and isinstance(configs[0].snr, float)
    assert all(getattr(configs[0], name) == getattr(ranged, name) for name in ACQUISITION_FIELDS if name not in (
        "defocus_um", "snr", "tilt_max"))  # fmt: skip
    source[1]
    assert configs[8] is not configs[0] and configs[8].defocus_um != configs[0].defocus_um
    assert "one acquisition per batch" in source.describe()
    configs.clear()
    source.one_acquisition_per_batch = False
    source[0]
    assert all(c is ranged for c in configs)


def test_one_acquisition_per_view_gives_each_half_of_a_batch_its_own_draw(monkeypatch):
    """``train --one-acquisition-per-view``: the first view of every pair (classes and structures drawn once alike)
    shares one fixed acquisition, the second view another, so each pair spans two microscopes; without the drawn-once
    structures too, and another batch draws two more."""
    pytest.importorskip("keras")
    from deepfinder_unsup.simulate import keras_source

    configs = configs_simulated_with(monkeypatch)
    ranged = fixed_config(defocus_um=[1.0, 6.0], snr={"log": [0.05, 1.0]})
    source = keras_source.SimulatedBatches(
        [builtin_structure("ring"), builtin_structure("globule")], ranged, batch_size=8, seed=1
    )
    source.instance_pairs, source.one_acquisition_per_view = True, True
    for fresh_share in (0.5, 0.0):
        source.fresh_share = fresh_share
        configs.clear()
        source[0]
        first, second = configs[:4], configs[4:]
        assert len(configs) == 8 and all(c is first[0] for c in first) and all(c is second[0] for c in second)
        assert first[0].defocus_um != second[0].defocus_um and isinstance(first[0].snr, float)
        source[1]
        assert configs[8] not in (first[0], second[0]) and configs[8].defocus_um != first[0].defocus_um
    assert "one acquisition per view" in source.describe()
