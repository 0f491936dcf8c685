"""Reference-free subtomogram averaging of one cluster, with a gold-standard FSC to say how far to trust it.

The paper's point: averaging the members of a cluster should reveal the structure of an unknown complex. Per
cluster, the particles are split into two half-sets refined independently (no information crosses between
them) from the same featureless start: a spherically averaged blob, or, when the picks carry angles, the
average of the particles rotated back by them. Each iteration:

1. **align** every particle of a half to its current reference, binned ``bin_factor`` times: a near-uniform
   set of ``n_rotations`` rotations (super-Fibonacci sampling of SO(3)) times every translation within
   ``max_shift`` at once (FFT cross-correlation), the reference's Fourier transform restricted to the missing
   wedge of the tomograms (constrained correlation: unmeasured frequencies do not count);
2. **average** at full size: each particle shifted and rotated back, summed in Fourier space and divided by the
   summed, equally rotated wedge masks (each frequency averaged over the particles that measured it), then
   inside a soft spherical mask.

At the end half 2 is aligned onto half 1 and the final map is their mean. Two half maps refined from no common
reference lie in unrelated frames, so that last alignment is unavoidable, and it is biased: over thousands of
rotations and shifts it finds the pose where two maps correlate most. The same alignment is therefore repeated on
``null_draws`` phase-randomised copies of half 2 (its power spectrum, no structure): their mean FSC is what the
alignment alone gives, and the reported FSC is corrected for it as Chen et al. (2013) correct for the mask,
(FSC - FSC_null) / (1 - FSC_null); the resolution is where that falls below 0.143. Measured on white noise (60
boxes of 32^3 at 13.68 Å, three seeds, `benchmarks/average_noise_fsc.py`): mean FSC over shells 2-8 0.167 as
measured, 0.049 corrected; 0.143 crossed at 73-109 Å as measured, at 88-438 Å corrected. A correction in
expectation: one draw of noise can still read a few shells (the 88 Å), and the lowest shell keeps what the two
halves share through their common spherical start and mask (FSC 0.45 -> 0.31 at shell 1).
Cost: ``n_rotations`` rotations of a binned reference per half and iteration, and one batched FFT correlation
each; the final alignment ``1 + null_draws`` times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft
from scipy.spatial.transform import Rotation

from .geometry import rotate_volume, rotation_from_deepfinder_angles
from .io.files import InputError
from .volume import box_centre, phase_randomised

FSC_THRESHOLD = 0.143
MIN_PARTICLES = 4  # two per half-set


@dataclass
class AverageResult:
    """A cluster's average, its half maps and their FSC, and each particle's alignment."""

    average: np.ndarray
    half_maps: tuple[np.ndarray, np.ndarray]
    fsc: np.ndarray  # per Fourier shell, shell i at frequency i / (box * voxel_size); corrected for fsc_null
    fsc_measured: np.ndarray  # between the aligned half maps, as measured
    fsc_null: np.ndarray  # what the half maps' alignment gives maps without common structure (mean of the draws)
    frequencies: np.ndarray  # 1/Å
    resolution: float  # Å at FSC 0.143 (the Nyquist limit if never below)
    voxel_size: float
    rotations: Rotation  # per particle: the particle is its half's reference rotated by this, then shifted
    shifts: np.ndarray  # (N, 3) voxels, x y z
    half: np.ndarray  # (N,) 0 or 1
    history: list = field(default_factory=list)


# -- sampling and masks -------------------------------------------------------------------------------------------
def rotation_grid(n: int) -> Rotation:
    """``n`` near-uniform rotations of SO(3): super-Fibonacci spirals (Alexa, CVPR 2022)."""
    phi, psi = np.sqrt(2.0), 1.533751168755204288118041
    s = np.arange(n) + 0.5
    r, big_r = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    alpha, beta = 2 * np.pi * s / phi, 2 * np.pi * s / psi
    quat = np.stack([r * np.sin(alpha), r * np.cos(alpha), big_r * np.sin(beta), big_r * np.cos(beta)], axis=1)
    return Rotation.from_quat(quat)


def wedge_mask(box: int, tilt_range: tuple[float, float] = (-60.0, 60.0)) -> np.ndarray:
    """Measured Fourier voxels (1) of a single-axis tilt series about y, [z, y, x] with the zero frequency at the
    box centre (``fftshift`` layout): a direction (kx, kz) is measured when its angle from the x axis lies in the
    tilt range."""
    k = np.arange(box) - box_centre(box)
    kz, _, kx = np.meshgrid(k, k, k, indexing="ij")
    angle = np.degrees(np.arctan2(kz, kx))
    angle = (angle + 90.0) % 180.0 - 90.0  # a direction and its opposite are the same line
    lo, hi = tilt_range
    mask = ((angle >= lo - 1e-6) & (angle <= hi + 1e-6)) | ((kx == 0) & (kz == 0))
    return mask.astype(np.float32)


def check_tilt_range(tilt_range: tuple[float, float]) -> None:
    """Refuse a tilt range that measures no wedge: it must be MIN < MAX within -90 .. 90 degrees."""
    lo, hi = (float(v) for v in tilt_range)
    if not (-90.0 <= lo < hi <= 90.0):
        raise InputError(f"tilt range must be MIN < MAX within -90 .. 90 degrees, got {lo:g} {hi:g}")


def spherical_mask(box: int, radius: float, soft: float = 3.0) -> np.ndarray:
    """1 inside ``radius`` voxels of the box centre, a cosine edge ``soft`` voxels wide, 0 beyond."""
    k = np.arange(box) - box_centre(box)
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    r = np.sqrt(x**2 + y**2 + z**2)
    edge = np.clip((r - radius) / soft, 0, 1)
    return (0.5 + 0.5 * np.cos(np.pi * edge)).astype(np.float32)


def radial_average(volume: np.ndarray) -> np.ndarray:
    """The spherically averaged volume about the box centre (a featureless starting reference)."""
    box = volume.shape[0]
    k = np.arange(box) - box_centre(box)
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    shell = np.round(np.sqrt(x**2 + y**2 + z**2)).astype(int)
    means = np.bincount(shell.ravel(), volume.ravel()) / np.maximum(np.bincount(shell.ravel()), 1)
    return means[shell].astype(np.float32)


def fourier_bin(volumes: np.ndarray, factor: int) -> np.ndarray:
    """Volumes (N, B, B, B) binned by Fourier cropping to B // factor (no aliasing)."""
    if factor == 1:
        return np.asarray(volumes, np.float32)
    box = volumes.shape[-1]
    small = box // factor
    ft = np.fft.fftshift(np.fft.fftn(volumes, axes=(-3, -2, -1)), axes=(-3, -2, -1))
    lo = box_centre(box) - box_centre(small)
    cropped = ft[..., lo : lo + small, lo : lo + small, lo : lo + small]
    out = np.fft.ifftn(np.fft.ifftshift(cropped, axes=(-3, -2, -1)), axes=(-3, -2, -1)).real
    return (out * (small / box) ** 3).astype(np.float32)


# -- FSC --------------------------------------------------------------------------------------------------------
def fourier_shell_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FSC of two cubic volumes per integer shell 0 .. box // 2 - 1."""
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    box = a.shape[0]
    k = np.fft.fftfreq(box) * box
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    shell = np.round(np.sqrt(kx**2 + ky**2 + kz**2)).astype(int).ravel()
    n = box // 2
    keep = shell < n
    num = np.bincount(shell[keep], (fa * np.conj(fb)).real.ravel()[keep], minlength=n)
    da = np.bincount(shell[keep], (np.abs(fa) ** 2).ravel()[keep], minlength=n)
    db = np.bincount(shell[keep], (np.abs(fb) ** 2).ravel()[keep], minlength=n)
    return num / np.sqrt(np.maximum(da * db, 1e-30))


def corrected_fsc(measured: np.ndarray, null: np.ndarray) -> np.ndarray:
    """The FSC beyond what ``null`` (the FSC of maps without common structure, after the same processing) gives:
    (FSC - FSC_null) / (1 - FSC_null), with the null clipped to [0, 0.99] (a negative null is noise, not a gain)."""
    null = np.clip(null, 0.0, 0.99)
    return (measured - null) / (1.0 - null)


def resolution_at(fsc: np.ndarray, voxel_size: float, box: int, threshold: float = FSC_THRESHOLD) -> float:
    """Å at the first shell (after shell 0) where the FSC falls below ``threshold``; Nyquist if it never does."""
    below = np.flatnonzero(fsc[1:] < threshold)
    return float(box * voxel_size / (below[0] + 1)) if len(below) else float(2 * voxel_size)


# -- alignment and averaging ---------------------------------------------------------------------------------------
def _signed(index: np.ndarray, box: int) -> np.ndarray:
    return np.where(index > box // 2, index - box, index)


def align(
    particles_ft: np.ndarray,
    reference: np.ndarray,
    rotations: Rotation,
    wedge_rfft: np.ndarray,
    max_shift: float,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (rotation index, shift (x y z) voxels, score) of every particle against ``reference`` rotated by each
    of ``rotations`` (all binned alike); ``particles_ft`` are their ``rfftn``. ``candidates`` (N, R) bool: the
    rotations tried for each particle (default: all)."""
    box = reference.shape[0]
    k = _signed(np.arange(box), box)
    dz, dy, dx = np.meshgrid(k, k, k, indexing="ij")
    allowed = (dx**2 + dy**2 + dz**2) <= max_shift**2
    flat_allowed = np.flatnonzero(allowed.ravel())
    n = len(particles_ft)
    best = np.full(n, -np.inf)
    best_rot = np.zeros(n, int)
    best_pos = np.zeros(n, int)
    tried = np.ones((n, len(rotations)), bool) if candidates is None else candidates
    for r in np.flatnonzero(tried.any(axis=0)):
        who = np.flatnonzero(tried[:, r])
        ref_ft = np.fft.rfftn(rotate_volume(reference, rotations[r])) * wedge_rfft
        norm = np.sqrt((np.abs(ref_ft) ** 2).sum())
        if norm == 0:
            continue
        cc = fft.irfftn(particles_ft[who] * np.conj(ref_ft), s=(box,) * 3, axes=(-3, -2, -1), workers=-1)
        cc = cc.reshape(len(who), -1)[:, flat_allowed] / norm
        pos = cc.argmax(axis=1)
        score = cc[np.arange(len(who)), pos]
        better = score > best[who]
        idx = who[better]
        best[idx], best_rot[idx], best_pos[idx] = score[better], r, flat_allowed[pos[better]]
    z, y, x = np.unravel_index(best_pos, (box,) * 3)
    shifts = np.stack([_signed(x, box), _signed(y, box), _signed(z, box)], axis=1).astype(float)
    return best_rot, shifts, best


def neighbourhoods(current: Rotation, grid: Rotation, within_deg: float) -> np.ndarray:
    """(N, R) bool: the grid rotations within ``within_deg`` degrees of each current rotation."""
    dots = np.abs(current.as_quat() @ grid.as_quat().T)
    return 2 * np.degrees(np.arccos(np.clip(dots, -1.0, 1.0))) <= within_deg


def back_rotated(particle: np.ndarray, rotation: Rotation, shift_xyz) -> np.ndarray:
    """The particle brought into its reference's frame: undo the shift, then the rotation (one interpolation)."""
    inv = rotation.inv()
    return rotate_volume(particle, inv, shift_xyz=-inv.apply(np.asarray(shift_xyz, float)), order=1)


def weighted_average(
    particles: np.ndarray, rotations: Rotation, shifts: np.ndarray, wedge: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Wedge-weighted average of the back-rotated particles: each frequency over the particles that measured it."""
    box = particles.shape[-1]
    total = np.zeros((box, box, box // 2 + 1), np.complex128)
    weight = np.zeros((box, box, box // 2 + 1))
    for i in range(len(particles)):
        total += np.fft.rfftn(back_rotated(particles[i], rotations[i], shifts[i]))
        w = np.fft.ifftshift(rotate_volume(wedge, rotations[i].inv(), order=1))
        weight += w[..., : box // 2 + 1]
    ratio = np.where(weight > 0.5, total / np.maximum(weight, 1.0), 0)
    return (np.fft.irfftn(ratio, s=(box,) * 3, axes=(0, 1, 2)) * mask).astype(np.float32)


def aligned_onto(
    reference: np.ndarray,
    volume: np.ndarray,
    coarse: Rotation,
    fine: Rotation,
    local_range_deg: float,
    bin_factor: int,
    max_shift_binned: float,
) -> np.ndarray:
    """``volume`` rotated and shifted onto ``reference`` (no wedge: both are averages): a global search on the
    coarse grid, refined on the fine grid around its best, both binned ``bin_factor`` times."""
    ft = np.fft.rfftn(fourier_bin(volume[None], bin_factor), axes=(-3, -2, -1))
    ref_small = fourier_bin(reference[None], bin_factor)[0]
    small = ref_small.shape[0]
    no_wedge = np.ones((small, small, small // 2 + 1), np.float32)
    r, s, _ = align(ft, ref_small, coarse, no_wedge, max_shift_binned)
    near = neighbourhoods(coarse[[int(r[0])]], fine, local_range_deg)
    r, s, _ = align(ft, ref_small, fine, no_wedge, max_shift_binned, near)
    return back_rotated(volume, fine[int(r[0])], s[0] * bin_factor)


def starting_reference(particles: np.ndarray, angles: np.ndarray | None, wedge: np.ndarray, mask) -> np.ndarray:
    """The picks' angles when every particle has them (particles rotated back), else a spherical blob."""
    if angles is not None:
        rot = rotation_from_deepfinder_angles(angles[:, 0], angles[:, 1], angles[:, 2])
        return weighted_average(particles, rot, np.zeros((len(particles), 3)), wedge, mask)
    return radial_average(particles.mean(axis=0)) * mask


def subtomogram_average(
    subtomograms: np.ndarray,
    voxel_size: float,
    *,
    angles: np.ndarray | None = None,
    tilt_range: tuple[float, float] = (-60.0, 60.0),
    iterations: int = 7,
    global_iterations: int = 3,
    n_rotations: int = 1000,
    n_fine_rotations: int = 4000,
    local_range_deg: float = 20.0,
    bin_factor: int = 2,
    max_shift: float | None = None,
    mask_radius: float | None = None,
    null_draws: int = 4,
    seed: int = 0,
) -> AverageResult:
    """Average ``subtomograms`` (N, B, B, B) of one cluster (see the module docstring); ``angles`` (N, 3):
    DeepFinder (phi, the, psi) of each pick, used for the start when given."""
    vols = np.asarray(subtomograms, np.float32)
    if vols.ndim != 4 or len(set(vols.shape[1:])) != 1:
        raise InputError(f"sub-tomograms must have shape (N, B, B, B), got {vols.shape}")
    if len(vols) < MIN_PARTICLES:
        raise InputError(f"{len(vols)} particles: averaging needs at least {MIN_PARTICLES} (two per half-set)")
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise InputError(f"voxel size must be a positive number of Å, got {voxel_size}")
    if not np.isfinite(vols).all():
        raise InputError("sub-tomograms hold NaN or inf voxels")
    check_tilt_range(tilt_range)
    box = vols.shape[-1]
    if box % (2 * bin_factor):
        raise InputError(f"box {box} must be a multiple of {2 * bin_factor} (2 x the binning factor)")
    vols = (vols - vols.mean(axis=(1, 2, 3), keepdims=True)) / (vols.std(axis=(1, 2, 3), keepdims=True) + 1e-6)
    mask = spherical_mask(box, mask_radius or 0.4 * box)
    wedge = wedge_mask(box, tilt_range)
    small = box // bin_factor
    wedge_small_rfft = np.fft.ifftshift(wedge_mask(small, tilt_range))[..., : small // 2 + 1]
    max_shift = (box / 8) if max_shift is None else max_shift
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(vols)) % 2
    coarse, fine = rotation_grid(n_rotations), rotation_grid(n_fine_rotations)
    if angles is None:  # a sphere holds no orientation: one start for both halves
        refs = [starting_reference(vols, None, wedge, mask)] * 2
    else:  # each half from its own particles, so that no particle's noise is in both halves' references
        refs = [starting_reference(vols[half == h], angles[half == h], wedge, mask) for h in (0, 1)]
    rot_idx = np.zeros(len(vols), int)
    shifts = np.zeros((len(vols), 3))
    rotations = Rotation.identity(len(vols))
    history = []
    binned_ft = np.fft.rfftn(fourier_bin(vols * mask, bin_factor), axes=(-3, -2, -1))
    for it in range(iterations):
        scores = np.zeros(len(vols))
        local = it >= global_iterations  # global search first, then around each particle's current rotation
        grid = fine if local else coarse
        for h in (0, 1):
            members = np.flatnonzero(half == h)
            ref_small = fourier_bin(refs[h][None], bin_factor)[0]
            near = neighbourhoods(rotations[members], fine, local_range_deg) if local else None
            r, s, sc = align(binned_ft[members], ref_small, grid, wedge_small_rfft, max_shift / bin_factor, near)
            rot_idx[members], shifts[members], scores[members] = r, s * bin_factor, sc
        rotations = grid[rot_idx]
        for h in (0, 1):
            members = np.flatnonzero(half == h)
            refs[h] = weighted_average(vols[members], rotations[members], shifts[members], wedge, mask)
        history.append({"iteration": it + 1, "mean_score": float(scores.mean())})
    # bring half 2 into half 1's frame, then compare and combine; the same alignment of structureless copies of
    # half 2 measures what the alignment alone adds to the FSC
    search = (coarse, fine, local_range_deg, bin_factor, max_shift / bin_factor)
    half2 = aligned_onto(refs[0], refs[1], *search) * mask
    measured = fourier_shell_correlation(refs[0], half2)
    nulls = [
        fourier_shell_correlation(refs[0], aligned_onto(refs[0], phase_randomised(refs[1], rng) * mask, *search) * mask)
        for _ in range(null_draws)
    ]
    null = np.mean(nulls, axis=0) if nulls else np.zeros_like(measured)
    fsc = corrected_fsc(measured, null)
    freqs = np.arange(len(fsc)) / (box * voxel_size)
    return AverageResult(
        average=((refs[0] + half2) / 2).astype(np.float32),
        half_maps=(refs[0], half2.astype(np.float32)),
        fsc=fsc,
        fsc_measured=measured,
        fsc_null=null,
        frequencies=freqs,
        resolution=resolution_at(fsc, voxel_size, box),
        voxel_size=float(voxel_size),
        rotations=rotations,
        shifts=shifts,
        half=half,
        history=history,
    )
