"""Procedural pseudo-molecules: determinism, physical size and mass, symmetry, mirror pairs, flexibility;
membrane binding geometry; the new microscope options."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from deepfinder_unsup.geometry import rotate_volume
from deepfinder_unsup.io.files import InputError
from deepfinder_unsup.simulate.config import fixed_config
from deepfinder_unsup.simulate.microscope import acquisition_order, ctf, reconstruction_filter
from deepfinder_unsup.simulate.procedural import ProceduralStructure, procedural_molecule, render_points, wobble_points
from deepfinder_unsup.simulate.scene import (
    StructureLibrary,
    _add_bound_membrane,
    fourier_power_filter,
    lowpass_filter,
    simulate_subtomogram,
    support_distance,
)
from deepfinder_unsup.simulate.structures import Structure, envelope_mask, load_structures


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_same_seed_same_molecule_other_seed_other_molecule():
    procedural_molecule.cache_clear()
    a = procedural_molecule(12).points.copy()
    procedural_molecule.cache_clear()
    assert np.array_equal(a, procedural_molecule(12).points)
    assert procedural_molecule(13).points.shape != a.shape or not np.allclose(procedural_molecule(13).points, a)


def test_masses_and_diameters_lie_in_the_documented_ranges():
    mols = [procedural_molecule(s) for s in range(60)]
    masses = np.array([m.mass_kda for m in mols])
    diam = np.array([m.diameter_a for m in mols])
    assert masses.min() > 40 and masses.max() < 4200  # drawn 100 kDa - 4 MDa; short helices weigh less
    assert diam.min() >= 50 and diam.max() <= 350
    assert len({m.symmetry for m in mols}) >= 8  # many point groups, not one


def test_integrated_density_grows_with_mass_like_protein():
    """Density is scaled like every map (envelope mean 1): the integral is the envelope volume, which must
    follow the mass (protein density) across sizes."""
    mols = [procedural_molecule(s) for s in range(0, 40, 2)]
    sums = [ProceduralStructure(m.seed).density.sum() for m in mols]
    r = np.corrcoef(np.log([m.mass_kda for m in mols]), np.log(sums))[0, 1]
    assert r > 0.9


def test_physical_size_does_not_depend_on_the_voxel_size():
    s = ProceduralStructure(21)
    radii = [s.at_voxel_size(vs).radius * vs for vs in (6.0, 10.0, 16.0)]
    assert max(radii) - min(radii) < 16.0  # Å, within about one coarse voxel


def test_point_group_symmetry_is_real():
    seed = next(s for s in range(200) if procedural_molecule(s).symmetry == "C4")
    dens = render_points(procedural_molecule(seed).points, 6.0)
    quarter = rotate_volume(dens, Rotation.from_euler("z", 90, degrees=True))
    eighth = rotate_volume(dens, Rotation.from_euler("z", 45, degrees=True))
    assert _corr(dens, quarter) > 0.95
    assert _corr(dens, eighth) < _corr(dens, quarter) - 0.05


def test_mirror_pairs_are_mirror_images_and_distinct_classes():
    a, b = procedural_molecule(3), procedural_molecule(4)
    assert b.mirrored and not a.mirrored and a.name != b.name
    assert np.allclose(b.points, a.points * [-1, 1, 1])
    da, db = render_points(a.points, 10.0), render_points(b.points, 10.0)
    assert np.allclose(db, da[:, :, ::-1], atol=1e-5)  # x mirrored in [z, y, x]


def test_a_mirrored_structure_is_the_generators_own_mirror_image_and_its_wobble_too():
    """``ProceduralStructure(seed, mirrored=True)`` (``train --fresh-mirrors``): seed 3's is seed 4's density (the
    generator's mirror of 3), x reversed in [z, y, x], not the original (chiral), named apart; its flexible copies
    stay with the mirror image (the wobble moves the mirrored molecule)."""
    plain, mirrored = ProceduralStructure(3), ProceduralStructure(3, mirrored=True)
    np.testing.assert_allclose(mirrored.density, ProceduralStructure(4).density, atol=1e-6)
    np.testing.assert_allclose(mirrored.density, plain.density[:, :, ::-1], atol=1e-5)
    assert _corr(mirrored.density, plain.density) < 0.95
    assert (plain.name, mirrored.name) == ("proc0000003", "proc0000003-mirror")
    wobbled = mirrored.at_voxel_size(10.0, np.random.default_rng(1), wobble=True).density
    assert _corr(wobbled, mirrored.density) > 0.99 > 0.9 > _corr(wobbled, plain.density)


def test_wobble_is_a_small_deformation():
    mol = procedural_molecule(8)
    moved = wobble_points(mol, np.random.default_rng(0))
    shift = np.linalg.norm(moved - mol.points, axis=1)
    assert 0.1 < shift.mean() < 15.0
    assert _corr(render_points(moved, 10.0), render_points(mol.points, 10.0)) > 0.8


def test_specs_procedural_membrane_and_bound_classes(tmp_path):
    structs = load_structures(["procedural:3:100", "procedural:2:100@membrane"])
    assert [s.name for s in structs] == [
        "proc0000100",
        "proc0000101",
        "proc0000102",
        "proc0000100@membrane",
        "proc0000101@membrane",
    ]
    assert [s.binding for s in structs] == ["free"] * 3 + ["surface"] * 2
    for bad in ("procedural:0", "procedural:x", "procedural:2:-1", "builtin:nosuch"):
        with pytest.raises(InputError, match="procedural|nosuch"):
            load_structures([bad])


def test_transmembrane_bilayer_is_normal_to_the_protein_axis():
    rng = np.random.default_rng(5)
    struct = Structure("tm", np.ones((5, 5, 5), np.float32), 10.0, binding="transmembrane", membrane_z=3.0)
    rot = Rotation.from_euler("zxz", [30, 50, 10], degrees=True)
    n = 60
    vol = np.zeros((n, n, n), np.float32)
    pos = np.full(3, (n - 1) / 2)
    _add_bound_membrane(vol, struct, "transmembrane", rot, pos, 10.0, rng)
    w = vol.ravel() / vol.sum()
    zz, yy, xx = np.meshgrid(*(np.arange(n),) * 3, indexing="ij")
    p = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1).astype(float)
    centre = (w[:, None] * p).sum(0)
    cov = ((p - centre) * w[:, None]).T @ (p - centre)
    normal = np.linalg.eigh(cov)[1][:, 0]  # the bilayer's thin direction
    axis = rot.apply([0, 0, 1])
    assert abs(normal @ axis) > 0.97
    # along the protein's axis through its bilayer centre: two leaflets 4 nm apart, symmetric about it
    from scipy import ndimage

    expected = pos + rot.apply([0, 0, 3.0])
    t = np.linspace(-6, 6, 241)
    line = expected[None] + t[:, None] * axis[None]
    profile = ndimage.map_coordinates(vol, line[:, ::-1].T, order=1)
    left, right = t[np.argmax(np.where(t < 0, profile, -1))], t[np.argmax(np.where(t > 0, profile, -1))]
    assert abs((left + right) / 2) < 0.3
    assert abs((right - left) - 4.0) < 0.3  # 40 Å at 10 Å / voxel


def test_surface_bound_membrane_touches_but_does_not_cut_the_particle():
    rng = np.random.default_rng(2)
    struct = ProceduralStructure(30)
    rot = Rotation.random(random_state=rng)
    n = 80
    vol = np.zeros((n, n, n), np.float32)
    pos = np.full(3, (n - 1) / 2)
    _add_bound_membrane(vol, struct, "surface", rot, pos, 10.0, rng)
    particle = np.zeros_like(vol)
    from deepfinder_unsup.simulate.scene import place_particle

    place_particle(particle, struct.density, rot, pos)
    inside = envelope_mask(particle)
    # little of the bilayer lies inside the particle, and the bilayer is near it (it is bound)
    assert vol[inside].sum() < 0.05 * vol.sum()
    assert vol[inside].max() > 0.02 * vol.max() or support_distance(struct.density, rot, [1, 0, 0]) > 0


def test_membrane_classes_simulate_with_a_membrane(rng):
    structs = load_structures(["procedural:1:40", "procedural:1:40@membrane"])
    lib = StructureLibrary(structs)
    cfg = fixed_config(snr=1.0)
    _, clean_free, info_free = simulate_subtomogram(lib, 1, cfg, rng, return_clean=True)
    _, clean_bound, info_bound = simulate_subtomogram(lib, 2, cfg, rng, return_clean=True)
    assert info_free.params["binding"] == "free" and info_bound.params["binding"] == "surface"
    # the bilayer adds density: a bound box holds much more signal than the free one
    assert np.abs(clean_bound).sum() > 1.3 * np.abs(clean_free).sum()


def test_tilt_schemes_visit_every_tilt_once():
    angles = np.arange(-60, 61, 3.0)
    for scheme in ("dose-symmetric", "bidirectional", "unidirectional"):
        order = acquisition_order(angles, scheme)
        assert sorted(order) == list(range(len(angles)))
    bi = acquisition_order(angles, "bidirectional")
    assert angles[bi[0]] == 0 and angles[bi[20]] == 60 and angles[bi[21]] == -3


def test_reconstruction_filters():
    f = np.abs(np.fft.rfftfreq(128))
    assert np.allclose(reconstruction_filter(128, "ramp")[1:], f[1:])
    assert np.isclose(reconstruction_filter(128, "hamming")[-1], 0.08 * 0.5)
    # SIRT-like: flattened high frequencies after few iterations, the ramp after many
    few, many = reconstruction_filter(128, "sirt", 5), reconstruction_filter(128, "sirt", 100000)
    assert few[-1] < 0.3 * f[-1]
    assert np.allclose(many[1:], f[1:], rtol=0.02)


def test_phase_plate_gives_strong_low_frequency_contrast():
    k = np.array([0.002])
    plain = ctf(k, 0.5, amplitude_contrast=0.07)
    plate = ctf(k, 0.5, amplitude_contrast=0.07, phase_shift=np.pi / 2)
    assert abs(plate[0]) > 0.9 and abs(plain[0]) < 0.2


def test_coloured_noise_and_lowpass_shape_the_spectrum(rng):
    white = rng.standard_normal((32, 32, 32)).astype(np.float32)
    red = fourier_power_filter(white, -0.5)  # power ~ 1 / |k|
    spec = np.abs(np.fft.rfftn(red)) ** 2
    k = np.sqrt(
        sum(g**2 for g in np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32), np.fft.rfftfreq(32), indexing="ij"))
    )
    low, high = spec[(k > 0.05) & (k < 0.1)].mean(), spec[(k > 0.3) & (k < 0.45)].mean()
    assert 3 < low / high < 12  # about the ratio of the frequencies (0.075 vs 0.375: 5x)
    smooth = lowpass_filter(white, 0.3)
    spec = np.abs(np.fft.rfftn(smooth)) ** 2
    assert spec[k > 0.3].mean() < 0.01 * spec[(k > 0.02) & (k < 0.1)].mean()
