"""Scenes: one labelled sub-tomogram (central particle, crowding, membranes, negatives) and whole tomograms."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..geometry import deepfinder_angles, random_rotations, rotate_volume
from ..log import logger
from ..volume import box_centre, crop_or_pad, normalise, resample_volume
from .config import SimConfig, draw
from .microscope import Microscope, mix_at_snr, reconstruct_signal_and_noise, reconstruct_together
from .structures import Structure, envelope_mask

MEMBRANE_LEAFLET_SEPARATION = 40.0  # Å between the two dense head-group sheets of a lipid bilayer
MEMBRANE_LEAFLET_SIGMA = 9.0  # Å, Gaussian thickness of each sheet


class StructureLibrary:
    """Structures at the output voxel size, made on demand at other simulation voxel sizes (a bounded cache,
    so thousands of classes fit in memory)."""

    def __init__(self, structures: list[Structure], cache_size: int = 2048):
        self.structures = list(structures)
        self.names = [s.name for s in structures]
        self._cache: OrderedDict[tuple[int, float], Structure] = OrderedDict()
        self.cache_size = cache_size

    def get(
        self, index: int, voxel_size: float, rng: np.random.Generator | None = None, wobble: bool = False
    ) -> Structure:
        """Structure ``index`` at ``voxel_size``; ``wobble``: a freshly deformed copy (not cached)."""
        base = self.structures[index]
        if wobble and rng is not None and hasattr(base, "molecule"):
            return base.at_voxel_size(voxel_size, rng, wobble=True)
        key = (index, round(voxel_size, 4))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        struct = base.at_voxel_size(voxel_size)
        self._cache[key] = struct
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return struct

    @contextmanager
    def visiting(self, structure: Structure) -> Iterator[int]:
        """``structure`` as one more class for a while (a class drawn once); yields its label, the last one.
        Afterwards the library is as before, its cache included."""
        self.structures.append(structure)
        self.names.append(structure.name)
        index = len(self.structures) - 1
        try:
            yield index + 1
        finally:
            self.structures.pop()
            self.names.pop()
            for key in [key for key in self._cache if key[0] == index]:
                del self._cache[key]


def paste(volume: np.ndarray, small: np.ndarray, center_zyx) -> None:
    """Add ``small`` into ``volume`` with its centre voxel at integer ``center_zyx`` (clipped at borders)."""
    c = np.asarray(center_zyx, int)
    half = np.array(small.shape) // 2
    lo, hi = c - half, c - half + np.array(small.shape)
    lo_c, hi_c = np.maximum(lo, 0), np.minimum(hi, volume.shape)
    if np.any(hi_c <= lo_c):
        return
    src = tuple(slice(a - l, b - l) for a, b, l in zip(lo_c, hi_c, lo))
    volume[tuple(slice(a, b) for a, b in zip(lo_c, hi_c))] += small[src]


def place_particle(volume: np.ndarray, density: np.ndarray, rotation, center_xyz) -> None:
    """Rotate ``density`` and add it at (possibly fractional) ``center_xyz`` (voxels) of ``volume``."""
    center_xyz = np.asarray(center_xyz, float)
    whole = np.round(center_xyz)
    rotated = rotate_volume(density, rotation, shift_xyz=center_xyz - whole)
    paste(volume, rotated, whole[::-1])


def add_membrane(
    volume: np.ndarray, voxel_size: float, point_xyz, normal_xyz, radius_a: float, amplitude: float = 0.8
) -> None:
    """Add a bilayer (two Gaussian sheets 4 nm apart) on a sphere of ``radius_a`` Å whose surface passes
    through ``point_xyz`` (voxels) with outward ``normal_xyz``."""
    n = np.asarray(normal_xyz, float)
    n /= np.linalg.norm(n)
    r = radius_a / voxel_size
    centre = np.asarray(point_xyz, float) - r * n
    z, y, x = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in volume.shape), indexing="ij")
    dist = (np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) - r) * voxel_size
    half = MEMBRANE_LEAFLET_SEPARATION / 2
    s2 = 2 * MEMBRANE_LEAFLET_SIGMA**2
    volume += amplitude * (np.exp(-((dist - half) ** 2) / s2) + np.exp(-((dist + half) ** 2) / s2)).astype(np.float32)


def _random_direction(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _random_in_ball(rng: np.random.Generator, radius: float) -> np.ndarray:
    return _random_direction(rng) * radius * rng.uniform() ** (1 / 3)


@dataclass
class SubtomogramDraw:
    """What was drawn for one sub-tomogram (recorded in its object-list entry)."""

    label: int
    center_xyz: np.ndarray
    angles: tuple | None
    params: dict = field(default_factory=dict)
    membrane_normal_xyz: tuple | None = None  # the bilayer of a bound particle (not written to object lists)


def simulate_subtomogram(
    library: StructureLibrary,
    label: int,
    config: SimConfig,
    rng: np.random.Generator,
    snr_override: float | None = None,
    return_clean: bool = False,
):
    """One normalised sub-tomogram (box^3 at the output voxel size) of class ``label``.

    ``label`` 0 is the negative class (no central particle), ``label`` k >= 1 is ``library.structures[k-1]``.
    A ``surface`` structure sits on a bilayer, a ``transmembrane`` one spans it (its z axis along the normal).
    Returns (volume, SubtomogramDraw) or, with ``return_clean``, (noisy, clean, draw) un-normalised.
    """
    sim_vs = float(draw(config.sim_voxel_size, rng))
    scale = config.voxel_size / sim_vs  # output voxels -> simulation voxels
    n_sim = int(round((config.box_size + 2 * config.margin) * scale))
    n_crop = min(n_sim, int(np.ceil(config.box_size * scale)) + 4)
    mic: Microscope = config.microscope(rng)
    snr = float(draw(config.snr, rng)) if snr_override is None else snr_override
    snr_reference = str(draw(config.snr_reference, rng))
    shift_out = _random_in_ball(rng, float(draw(config.shift_max, rng)))
    scene = _compose_scene(library, label, config, rng, sim_vs, n_sim, shift_out, snr_reference)
    noisy, clean, look = _acquire_subtomogram(scene, mic, sim_vs, n_crop, config, snr, rng)
    c_out = config.box_size // 2
    info = SubtomogramDraw(
        label,
        np.array([c_out, c_out, c_out], float) + shift_out,
        scene.angles,
        {
            "snr": snr,
            "defocus_um": mic.defocus_um,
            "tilt_min": mic.tilt_min,
            "tilt_max": mic.tilt_max,
            "tilt_step": mic.tilt_step,
            "sim_voxel_size": sim_vs,
            "bfactor": mic.bfactor,
            "polarity": look["polarity"],
            "ctf_correction": mic.ctf_correction,
            "phase_shift": mic.phase_shift,
            "tilt_scheme": mic.tilt_scheme,
            "wbp_filter": mic.wbp_filter,
            "noise_colour": look["noise_colour"],
            "lowpass": look["lowpass"],
            "background": scene.background,
            "binding": scene.binding,
            "snr_reference": scene.snr_reference,
        },
        None if scene.normal is None else tuple(float(v) for v in scene.normal),
    )
    if return_clean:
        return noisy, clean, info
    return normalise(noisy[None])[0], info


@dataclass
class _Scene:
    """One sub-tomogram's densities at the simulation voxel size, before the microscope, and what was drawn."""

    volume: np.ndarray  # everything in the box
    particle: np.ndarray | None  # the central particle alone, when the SNR is the particle's
    snr_reference: str
    angles: tuple | None = None
    binding: str = "free"
    normal: np.ndarray | None = None  # the bilayer of a bound particle
    background: float = 0.0


def _compose_scene(
    library: StructureLibrary,
    label: int,
    config: SimConfig,
    rng: np.random.Generator,
    sim_vs: float,
    n_sim: int,
    shift_out: np.ndarray,
    snr_reference: str,
) -> _Scene:
    """The central particle (none for ``label`` 0) with its bilayer, its neighbours, a stray membrane beside a free
    particle, and the cytoplasm-like background."""
    scale = config.voxel_size / sim_vs  # output voxels -> simulation voxels
    volume = np.zeros((n_sim,) * 3, np.float32)
    scene = _Scene(volume, np.zeros_like(volume) if snr_reference == "particle" else None, snr_reference)
    centre = np.full(3, float(box_centre(n_sim)))  # lands on the output box's centre (volume.py's convention)
    if label > 0:
        occupied = [_place_central_particle(scene, library, label, config, sim_vs, centre + shift_out * scale, rng)]
    else:
        occupied = [(centre, 12.0 * scale)]  # keep the centre free of neighbours
        if scene.particle is not None:  # the noise of a box with a particle: a random structure's power, not placed
            _place_phantom(scene.particle, library, sim_vs, centre, rng)
    _add_neighbours(volume, library, sim_vs, occupied, int(draw(config.n_neighbours, rng)), rng, label == 0)
    if scene.binding == "free":
        nearest = occupied[0][1] + 2 if label > 0 else 0.0
        _maybe_add_stray_membrane(volume, sim_vs, centre, nearest, config.p_membrane, rng)
    scene.background = float(draw(config.background, rng))
    if scene.background > 0:
        volume += smooth_background(volume.shape, sim_vs, scene.background, rng)
    if scene.particle is None and not volume.any() and library.structures:
        # an empty negative box has no signal to set its noise by: a random structure's power, as "particle" does
        scene.snr_reference, scene.particle = "particle", np.zeros_like(volume)
        _place_phantom(scene.particle, library, sim_vs, centre, rng)
    return scene


def _place_central_particle(
    scene: _Scene,
    library: StructureLibrary,
    label: int,
    config: SimConfig,
    sim_vs: float,
    pos: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Class ``label`` in a random pose at ``pos`` (simulation voxels), on its bilayer if it is bound; records the
    pose, binding and membrane normal in ``scene``; returns the space it occupies (centre, radius)."""
    struct = library.get(label - 1, sim_vs, rng, wobble=bool(config.wobble))
    rot = random_rotations(1, rng)[0]
    place_particle(scene.volume if scene.particle is None else scene.particle, struct.density, rot, pos)
    if scene.particle is not None:
        scene.volume += scene.particle
    scene.angles = tuple(float(a) for a in deepfinder_angles(rot))
    scene.binding = "surface" if library.names[label - 1] in config.membrane_bound else struct.binding
    scene.normal = _add_bound_membrane(scene.volume, struct, scene.binding, rot, pos, sim_vs, rng)
    return pos, struct.radius


def _place_phantom(
    volume: np.ndarray, library: StructureLibrary, sim_vs: float, centre: np.ndarray, rng: np.random.Generator
) -> None:
    """A random structure in a random pose at ``centre``: the signal a box without a particle sets its noise by."""
    phantom = library.get(int(rng.integers(len(library.structures))), sim_vs)
    place_particle(volume, phantom.density, random_rotations(1, rng)[0], centre)


def _maybe_add_stray_membrane(
    volume: np.ndarray, sim_vs: float, centre: np.ndarray, nearest: float, chance: float, rng: np.random.Generator
) -> None:
    """With probability ``chance``, a membrane further than ``nearest`` voxels from the centre (none when the
    particle fills the box)."""
    n_sim = volume.shape[0]
    if rng.uniform() < chance and nearest < n_sim / 2:
        d = rng.uniform(nearest, n_sim / 2)
        direction = _random_direction(rng)
        add_membrane(volume, sim_vs, centre + d * direction, direction, rng.uniform(400, 3000))


def _acquire_subtomogram(
    scene: _Scene,
    mic: Microscope,
    sim_vs: float,
    n_crop: int,
    config: SimConfig,
    snr: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The scene through the microscope at the output voxel size: (noisy, clean, the look drawn: polarity, noise
    colour, low-pass). The SNR is the box's, or its central particle's where ``scene.particle`` holds it."""
    clean, *alone, noise = reconstruct_together(
        [scene.volume] if scene.particle is None else [scene.volume, scene.particle], mic, sim_vs, n_crop, rng
    )
    polarity = float(draw(config.polarity, rng))
    clean, noise = (_to_output(v, sim_vs, config) * polarity for v in (clean, noise))
    reference = _to_output(alone[0], sim_vs, config) if alone else None
    colour = float(draw(config.noise_colour, rng))
    if colour:
        noise = fourier_power_filter(noise, -colour / 2)
    noisy = mix_at_snr(clean, noise, snr, reference)
    lowpass = draw(config.lowpass, rng)
    if lowpass:
        noisy = lowpass_filter(noisy, float(lowpass))
    return noisy, clean, {"polarity": polarity, "noise_colour": colour, "lowpass": lowpass or 0.0}


def _add_bound_membrane(
    volume: np.ndarray,
    struct: Structure,
    binding: str,
    rot,
    pos: np.ndarray,
    voxel_size: float,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """The bilayer of a membrane-bound (``surface``) or ``transmembrane`` particle placed at ``pos``; returns
    its normal (x, y, z), None for a free particle."""
    if binding == "transmembrane":
        normal = rot.apply([0.0, 0.0, 1.0])
        add_membrane(volume, voxel_size, pos + rot.apply([0.0, 0.0, struct.membrane_z]), normal, rng.uniform(400, 3000))
        return normal
    if binding == "surface":
        direction = _random_direction(rng)  # from the particle towards the membrane
        contact = support_distance(struct.density, rot, direction)
        gap = MEMBRANE_LEAFLET_SEPARATION / 2 / voxel_size + rng.uniform(0.5, 1.5)
        add_membrane(volume, voxel_size, pos + (contact + gap) * direction, -direction, rng.uniform(400, 3000))
        return -direction
    return None


def support_distance(density: np.ndarray, rotation, direction_xyz: np.ndarray) -> float:
    """How far (voxels) the rotated molecular envelope reaches from its centre along ``direction_xyz``."""
    idx = np.argwhere(envelope_mask(density))[:, ::-1].astype(float)  # x, y, z
    idx -= (np.array(density.shape)[::-1] - 1) / 2.0
    return float(max(0.0, (rotation.apply(idx) @ np.asarray(direction_xyz, float)).max()))


def smooth_background(shape, voxel_size: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Cytoplasm-like texture: Gaussian noise smoothed over 3-6 nm, scaled to ``amplitude`` (x protein density)."""
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape).astype(np.float32), rng.uniform(30.0, 60.0) / voxel_size / 2, truncate=2.0
    )
    return (amplitude * field / max(float(field.std()), 1e-8)).astype(np.float32)


def fourier_power_filter(volume: np.ndarray, exponent: float) -> np.ndarray:
    """Multiply the spectrum by ``|k|^exponent`` (DC kept): coloured noise from white noise."""
    k = _radial_frequency(volume.shape)
    k[0, 0, 0] = 1.0
    return np.fft.irfftn(np.fft.rfftn(volume) * k**exponent, s=volume.shape, axes=(0, 1, 2)).astype(np.float32)


def lowpass_filter(volume: np.ndarray, fraction_of_nyquist: float) -> np.ndarray:
    """A smooth (Butterworth, order 4) low-pass at ``fraction_of_nyquist``: a denoised-looking volume."""
    k = _radial_frequency(volume.shape) / 0.5
    h = 1.0 / (1.0 + (k / fraction_of_nyquist) ** 8)
    return np.fft.irfftn(np.fft.rfftn(volume) * h, s=volume.shape, axes=(0, 1, 2)).astype(np.float32)


def _radial_frequency(shape) -> np.ndarray:
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def _to_output(volume: np.ndarray, sim_vs: float, config: SimConfig) -> np.ndarray:
    if abs(sim_vs - config.voxel_size) > 1e-6:
        volume = resample_volume(volume, sim_vs, config.voxel_size, order=1)  # linear: 4x faster than cubic
    return crop_or_pad(volume, config.box_size)


def _add_neighbours(
    volume,
    library: StructureLibrary,
    sim_vs: float,
    occupied: list,
    count: int,
    rng: np.random.Generator,
    negative: bool,
) -> None:
    """Crowding: ``count`` random structures around the centre, not overlapping anything placed so far."""
    n = volume.shape[0]
    centre = np.full(3, (n - 1) / 2.0)
    for _ in range(count):
        idx = int(rng.integers(len(library.structures)))
        struct = library.get(idx, sim_vs)
        for _attempt in range(10):
            d = occupied[0][1] + struct.radius + rng.uniform(0, n / 3)
            pos = occupied[0][0] + d * _random_direction(rng)
            if np.all(np.abs(pos - centre) < n / 2 + struct.radius) and all(
                np.linalg.norm(pos - p) >= r + struct.radius for p, r in occupied
            ):
                place_particle(volume, struct.density, random_rotations(1, rng)[0], pos)
                occupied.append((pos, struct.radius))
                break


# --- whole tomograms ----------------------------------------------------------------------------------
def simulate_tomogram(
    library: StructureLibrary,
    shape_zyx=(96, 256, 256),
    n_particles: int = 100,
    n_membranes: int = 1,
    config: SimConfig | None = None,
    seed: int = 0,
    snr: float | None = None,
    fill: bool = False,
):
    """A crowded tomogram: particles of every library class placed without overlap, plus membranes.

    Returns (tomogram ``[z, y, x]`` float32 at ``config.voxel_size``, object list with ``label`` = class
    index + 1, voxel coordinates, DeepFinder angles). Acquisition parameters are one draw of ``config``. A
    particle that finds no free place (50 tries) or is larger than the tomogram is left out, with a warning
    (``fill``: ``n_particles`` is an upper bound, as many as fit, no warning).
    """
    from ..io.objl import new_object

    config = config or SimConfig()
    rng = np.random.default_rng(seed)
    vs = config.voxel_size
    volume = np.zeros(shape_zyx, np.float32)
    occupied: list[tuple[np.ndarray, float]] = []
    for _ in range(n_membranes):
        r_a = rng.uniform(300, 800)
        r_v = r_a / vs
        c = np.array([rng.uniform(r_v, s - r_v) if s > 2 * r_v else s / 2 for s in shape_zyx[::-1]])
        direction = _random_direction(rng)
        add_membrane(volume, vs, c + r_v * direction, direction, r_a)
        occupied.append((c, -r_v))  # marker: a shell of radius r_v (checked separately)
    shells = [(c, -r) for c, r in occupied]
    occupied = []
    objl: list[dict] = []
    margin = 4
    for i in range(n_particles):
        label = 1 + (i % len(library.structures))
        struct = library.get(label - 1, vs)
        r = struct.radius
        if any(s <= 2 * (r + margin) for s in shape_zyx):  # larger than the tomogram: cannot be placed
            continue
        for _attempt in range(50):
            pos = np.array([rng.uniform(r + margin, s - r - margin) for s in shape_zyx[::-1]])
            clear = all(np.linalg.norm(pos - p) >= r + q + 1 for p, q in occupied)
            clear &= all(abs(np.linalg.norm(pos - c) - rs) >= r + 3 for c, rs in shells)
            if clear:
                rot = random_rotations(1, rng)[0]
                place_particle(volume, struct.density, rot, pos)
                occupied.append((pos, r))
                phi, the, psi = deepfinder_angles(rot)
                objl.append(
                    new_object(
                        label,
                        *pos,
                        tomo_idx=0,
                        obj_id=len(objl),
                        phi=float(phi),
                        the=float(the),
                        psi=float(psi),
                        class_name=library.names[label - 1],
                    )
                )
                break
    if len(objl) < n_particles and not fill:
        logger.warning(
            f"placed {len(objl)} of {n_particles} particles: no room for the others without overlap in a "
            f"{' x '.join(map(str, shape_zyx[::-1]))} (x y z) tomogram at {vs} Å"
        )
    mic = config.microscope(rng)
    snr = float(draw(config.snr, rng)) if snr is None else snr
    boxes = particle_boxes(shape_zyx, occupied)
    tomo = _acquire_full(volume, mic, vs, snr, rng, boxes)  # whole volume, detector as wide as the volume
    return tomo, objl


def particle_boxes(shape_zyx, placed: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Boolean ``[z, y, x]`` mask of the cubes (side 2 r + 1 around each centre, (x, y, z) voxels) of the placed
    particles: where a picked sub-tomogram's particle lies."""
    mask = np.zeros(shape_zyx, bool)
    for pos, radius in placed:
        lo = [max(int(np.floor(c - radius)), 0) for c in pos[::-1]]
        hi = [min(int(np.ceil(c + radius)) + 1, n) for c, n in zip(pos[::-1], shape_zyx)]
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return mask


def _acquire_full(
    volume, mic: Microscope, voxel_size: float, snr: float, rng, boxes: np.ndarray | None = None
) -> np.ndarray:
    """The reconstructed volume with noise at ``snr`` of the signal inside ``boxes`` (the particles' cubes): the
    SNR is the particles', so a sparse tomogram is as noisy as a crowded one (in a microscope the dose sets the
    noise); the whole volume's signal when no particle was placed."""
    clean, noise = reconstruct_signal_and_noise(volume, mic, voxel_size, None, rng)
    signal = clean[boxes] if boxes is not None and boxes.any() else None
    return mix_at_snr(clean, noise, snr, signal)
