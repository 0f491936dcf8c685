"""The microscope: single-axis tilt series about y, CTF, dose weighting, noise, weighted back-projection.

Geometry. Volumes are ``[z, y, x]``; the beam runs along z at zero tilt and the tilt axis is y. A tilt series is
(n_tilts, ny, n_det); projection and back-projection are line integrals in each x-z plane with linear
interpolation, written once per (plane size, tilt angles) as a sparse matrix and applied to all y rows at once:
real-space geometry, so nothing wraps around, and the missing wedge and its streaks appear as in real data.

Image formation per tilt: projected potential -> B-factor envelope ``exp(-B k^2 / 4)`` -> CTF (weak phase,
``CTF(k) = -[sqrt(1 - A^2) sin(chi) + A cos(chi)]``, ``chi = pi lambda dz k^2 - pi/2 Cs lambda^3 k^4``,
underfocus ``dz > 0``) -> radiation damage by accumulated dose (Grant & Grigorieff 2015 critical exposure)
-> white Gaussian shot noise. Reconstruction: ramp (Ram-Lak) filter along the detector, back-projection.

SNR (precise definition): the variance of the noise-free reconstruction divided by the variance of the
reconstruction of the noise alone, both over the output box. Reconstruction is linear, so the noise is scaled
to give exactly the requested SNR (measured back in the tests by simulating twice with one seed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..volume import crop_start


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å."""
    v = voltage_kv * 1e3
    return 12.2643 / np.sqrt(v * (1 + 0.97845e-6 * v))


def ctf(
    k: np.ndarray,
    defocus_um: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    phase_shift: float = 0.0,
) -> np.ndarray:
    """Weak-phase CTF at spatial frequencies ``k`` (1/Å); underfocus positive, in µm; ``phase_shift`` (rad)
    of a phase plate (Volta: about pi / 2) added to the aberration phase."""
    lam = electron_wavelength(voltage_kv)
    dz = defocus_um * 1e4
    cs = cs_mm * 1e7
    chi = np.pi * lam * dz * k**2 - 0.5 * np.pi * cs * lam**3 * k**4 + phase_shift
    a = amplitude_contrast
    return -(np.sqrt(1 - a * a) * np.sin(chi) + a * np.cos(chi))


def ctf_zeros(
    defocus_um: float,
    voltage_kv: float = 300.0,
    amplitude_contrast: float = 0.07,
    k_max: float = 0.5,
    cs_mm: float = 0.0,
) -> np.ndarray:
    """Frequencies (1/Å) of the CTF's zeros below ``k_max``, for Cs = 0 in closed form.

    With Cs = 0, ``chi = pi lambda dz k^2`` and zeros satisfy ``chi = n pi - atan(A / sqrt(1 - A^2))``.
    """
    if cs_mm:
        raise NotImplementedError("closed form only for Cs = 0")
    lam = electron_wavelength(voltage_kv)
    dz = defocus_um * 1e4
    phase0 = np.arctan(amplitude_contrast / np.sqrt(1 - amplitude_contrast**2))
    n = np.arange(1, 10000)
    k = np.sqrt((n * np.pi - phase0) / (np.pi * lam * dz))
    return k[k < k_max]


def critical_exposure(k: np.ndarray) -> np.ndarray:
    """Grant & Grigorieff (2015) critical exposure (e/Å^2) at frequency k (1/Å), 300 kV."""
    return 0.245 * np.maximum(k, 1e-6) ** -1.665 + 2.81


def dose_symmetric_order(angles: np.ndarray) -> np.ndarray:
    """Acquisition order of a dose-symmetric scheme (Hagen 2017): 0, then +/- alternating in pairs."""
    angles = np.asarray(angles, float)
    start = int(np.argmin(np.abs(angles)))
    order, lo, hi, side = [start], start - 1, start + 1, +1
    while lo >= 0 or hi < len(angles):
        for _ in range(2):
            if side > 0 and hi < len(angles):
                order.append(hi)
                hi += 1
            elif side < 0 and lo >= 0:
                order.append(lo)
                lo -= 1
        side = -side
    return np.array(order)


def bidirectional_order(angles: np.ndarray) -> np.ndarray:
    """Acquisition order of a bidirectional scheme: from 0 to one end, then from 0 to the other end."""
    angles = np.asarray(angles, float)
    start = int(np.argmin(np.abs(angles)))
    return np.concatenate([np.arange(start, len(angles)), np.arange(start - 1, -1, -1)])


def acquisition_order(angles: np.ndarray, scheme: str) -> np.ndarray:
    """Order in which the tilts were recorded: ``dose-symmetric``, ``bidirectional`` or ``unidirectional``."""
    if scheme == "dose-symmetric":
        return dose_symmetric_order(angles)
    if scheme == "bidirectional":
        return bidirectional_order(angles)
    if scheme == "unidirectional":
        return np.arange(len(angles))
    raise ValueError(f"unknown tilt scheme {scheme!r}")


def tilt_angles(tilt_min: float = -60.0, tilt_max: float = 60.0, step: float = 3.0) -> np.ndarray:
    """Tilt angles in degrees from ``tilt_min`` to ``tilt_max`` inclusive."""
    n = int(round((tilt_max - tilt_min) / step)) + 1
    return tilt_min + step * np.arange(n)


CACHED_ANGLE_GRID = 0.1  # degrees: tilts on this grid (every nominal scheme) reuse cached projection blocks


def _radon_rows(nz: int, nx: int, angles_deg: tuple, n_det: int) -> sp.csc_matrix:
    """Sparse (n_tilts * n_det, nz * nx) projection of an x-z plane, linear interpolation on the detector,
    built for all tilts at once, column by column (each pixel's rows come out ascending: no sort needed)."""
    t = np.deg2rad(np.asarray(angles_deg, float))[:, None]
    zz, xx = np.meshgrid(np.arange(nz) - (nz - 1) / 2.0, np.arange(nx) - (nx - 1) / 2.0, indexing="ij")
    u = xx.ravel()[None] * np.cos(t) + zz.ravel()[None] * np.sin(t) + (n_det - 1) / 2.0  # (tilts, pixels)
    i0 = np.floor(u).astype(np.int64)
    w1 = (u - i0).astype(np.float32)
    idx = np.stack([i0, i0 + 1], -1).transpose(1, 0, 2)  # (pixels, tilts, 2)
    weights = np.stack([1.0 - w1, w1], -1).transpose(1, 0, 2)
    keep = (idx >= 0) & (idx < n_det) & (weights > 0)
    rows = idx + n_det * np.arange(len(angles_deg))[None, :, None]
    indptr = np.concatenate([[0], np.cumsum(keep.reshape(nz * nx, -1).sum(axis=1))])
    shape = (len(angles_deg) * n_det, nz * nx)
    return sp.csc_matrix((weights[keep], rows[keep].astype(np.int32), indptr), shape=shape)


@functools.lru_cache(maxsize=4096)
def _radon_block(nz: int, nx: int, angle_deg: float, n_det: int) -> sp.csr_matrix:
    """The projection block of one tilt (cached: nominal tilt schemes share their angles)."""
    return _radon_rows(nz, nx, (angle_deg,), n_det).tocsr()


def _on_cached_grid(angle_deg: float) -> bool:
    steps = angle_deg / CACHED_ANGLE_GRID
    return abs(steps - round(steps)) < 1e-6


def radon_matrix(nz: int, nx: int, angles_deg: tuple, n_det: int) -> sp.csr_matrix | sp.csc_matrix:
    """Sparse (n_tilts * n_det, nz * nx) projection of an x-z plane, linear interpolation on the detector.

    Detector coordinate of pixel (x, z) at tilt t: ``u = x cos t + z sin t`` about the plane's centre. Tilts on
    a 0.1-degree grid (every nominal scheme) are stacked from one cached block per angle, so schemes reuse the
    blocks of the angles they share; a series with alignment errors (angles off the grid, thousands of distinct
    values) is built at once and not cached, so it does not evict the reusable blocks. Both give the same
    products, bit for bit (``tests/test_simulate.py``).
    """
    angles = tuple(round(float(a), 3) for a in angles_deg)
    if all(_on_cached_grid(a) for a in angles):
        return sp.vstack([_radon_block(nz, nx, a, n_det) for a in angles], format="csr")
    return _radon_rows(nz, nx, angles, n_det)


def sampled_by_tilts(direction_xyz, tilt_min: float, tilt_max: float, along_axis: float = 0.2) -> bool:
    """Whether a tilt series about y from ``tilt_min`` to ``tilt_max`` (degrees) samples the Fourier line along
    ``direction_xyz``: the line along a flat membrane's normal, all its contrast. The projection at tilt t
    (``u = x cos t + z sin t``) measures the central slice holding y and (cos t, 0, sin t), so the line is
    measured when the direction's angle in the x-z plane, ``atan(z / x)``, lies in the tilt range, or when the
    direction is within ``asin(along_axis)`` of the tilt axis itself (then every slice nearly holds it)."""
    x, _, z = (float(v) for v in direction_xyz)
    if np.hypot(x, z) < along_axis * np.linalg.norm(direction_xyz):
        return True
    angle = np.degrees(np.arctan(z / x)) if x != 0 else 90.0
    return bool(tilt_min <= angle <= tilt_max)


def project(volume: np.ndarray, angles_deg, n_det: int | None = None) -> np.ndarray:
    """Tilt series (n_tilts, ny, n_det) of a ``[z, y, x]`` volume: line integrals about the y axis."""
    nz, ny, nx = volume.shape
    n_det = n_det or nx
    mat = radon_matrix(nz, nx, tuple(float(a) for a in angles_deg), n_det)
    planes = np.ascontiguousarray(volume.transpose(0, 2, 1), dtype=np.float32).reshape(nz * nx, ny)
    sino = mat @ planes  # (n_tilts * n_det, ny)
    return sino.reshape(len(angles_deg), n_det, ny).transpose(0, 2, 1)


WBP_FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "sirt")


def reconstruction_filter(n: int, kind: str = "ramp", sirt_iterations: int = 10) -> np.ndarray:
    """Weights on ``rfftfreq(n)`` of the detector axis: the ramp, apodised ramps, or a SIRT-like filter.

    ``sirt``: WBP that looks like ``N = sirt_iterations`` of SIRT (after Zeng 2012): back-projection of the
    projections responds as ``1 / |f|``, so N SIRT steps of size ``f1`` (the lowest frequency) reconstruct
    ``1 - (1 - f1 / |f|)^N`` of each frequency: the ramp at low frequencies, flattened (smoother) at high ones.
    """
    freq = np.abs(np.fft.rfftfreq(n))
    ramp = freq.copy()
    ramp[0] = 0.25 / n  # DC term of the discrete ramp (keeps the mean instead of removing it)
    x = freq / 0.5  # 0 .. 1 at Nyquist
    if kind == "ramp":
        return ramp
    if kind == "shepp-logan":
        return ramp * np.sinc(x / 2)
    if kind == "cosine":
        return ramp * np.cos(np.pi * x / 2)
    if kind == "hamming":
        return ramp * (0.54 + 0.46 * np.cos(np.pi * x))
    if kind == "sirt":
        f1 = 1.0 / n
        f = np.maximum(freq, f1)
        return (1 - (1 - f1 / f) ** sirt_iterations) * f
    raise ValueError(f"unknown reconstruction filter {kind!r}; choose from {', '.join(WBP_FILTERS)}")


def ramp_filter(tilt_series: np.ndarray, kind: str = "ramp", sirt_iterations: int = 10) -> np.ndarray:
    """Filter along the detector axis (last), zero-padded to twice the width against wrap-around."""
    n = tilt_series.shape[-1]
    pad = 2 * n
    freq = reconstruction_filter(pad, kind, sirt_iterations)
    spec = np.fft.rfft(tilt_series, n=pad, axis=-1) * freq
    return np.fft.irfft(spec, n=pad, axis=-1)[..., :n].astype(np.float32)


def weighted_backprojection(
    tilt_series: np.ndarray,
    angles_deg,
    nz: int,
    nx: int,
    crop: int | None = None,
    kind: str = "ramp",
    sirt_iterations: int = 10,
) -> np.ndarray:
    """WBP of (n_tilts, ny, n_det) into a ``[z, y, x]`` volume (central crop x ny x crop if ``crop``)."""
    n_tilts, ny, n_det = tilt_series.shape
    mat = radon_matrix(nz, nx, tuple(float(a) for a in angles_deg), n_det)
    filtered = ramp_filter(tilt_series, kind, sirt_iterations)
    sino = np.ascontiguousarray(filtered.transpose(0, 2, 1)).reshape(n_tilts * n_det, ny)
    planes = (mat.T @ sino).reshape(nz, nx, ny)  # back-projection = transpose of the projection
    if crop is not None and (crop < nz or crop < nx):
        z0, x0 = crop_start(nz, crop), crop_start(nx, crop)
        planes = planes[z0 : z0 + crop, x0 : x0 + crop]
    vol = planes.transpose(0, 2, 1)
    return (vol * (np.pi / (2 * n_tilts))).astype(np.float32)


@dataclass
class Microscope:
    """Acquisition parameters of one tilt series (one draw of the domain randomisation)."""

    tilt_min: float = -60.0
    tilt_max: float = 60.0
    tilt_step: float = 3.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_um: float = 3.0
    total_dose: float = 100.0
    bfactor: float = 0.0
    ctf_correction: str = "none"  # 'none', 'flip' (phase flipping) or 'multiply' (flip x |CTF|, Wiener-like)
    phase_shift: float = 0.0  # phase plate (rad)
    tilt_scheme: str = "dose-symmetric"
    tilt_error_deg: float = 0.0  # rms error of the tilt angles assumed by the reconstruction
    tilt_error_pattern: int = 0  # which of a few fixed error patterns (keeps the projector cache small)
    wbp_filter: str = "ramp"
    sirt_iterations: int = 10

    @property
    def angles(self) -> np.ndarray:
        return tilt_angles(self.tilt_min, self.tilt_max, self.tilt_step)

    @property
    def true_angles(self) -> np.ndarray:
        """The angles the specimen really had: the nominal ones plus the alignment error pattern."""
        if not self.tilt_error_deg:
            return self.angles
        err = np.random.default_rng([self.tilt_error_pattern, 7]).standard_normal(len(self.angles))
        return self.angles + np.round(self.tilt_error_deg * err, 2)


def frequency_grid_2d(ny: int, nx: int, voxel_size: float) -> np.ndarray:
    """|k| (1/Å) on the rfft2 grid of an (ny, nx) image."""
    ky = np.fft.fftfreq(ny, d=voxel_size)
    kx = np.fft.rfftfreq(nx, d=voxel_size)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def image_filter(mic: Microscope, ny: int, nx: int, voxel_size: float) -> np.ndarray:
    """Per-tilt Fourier filter (n_tilts, ny, nx//2+1): envelope x CTF (x phase flip) x dose attenuation."""
    k = frequency_grid_2d(ny, nx, voxel_size)
    h = ctf(k, mic.defocus_um, mic.voltage_kv, mic.cs_mm, mic.amplitude_contrast, mic.phase_shift)
    if mic.ctf_correction == "flip":
        h = np.abs(h) * -1.0  # flipped to the sign of the low-frequency (amplitude) contrast
    elif mic.ctf_correction == "multiply":
        h = -(h * h)  # corrected by multiplying with the CTF (the numerator of a Wiener filter)
    h = h * np.exp(-mic.bfactor * k**2 / 4.0)
    angles = mic.angles
    dose_per_tilt = mic.total_dose / len(angles)
    order = acquisition_order(angles, mic.tilt_scheme)
    prior_dose = np.empty(len(angles))
    prior_dose[order] = np.arange(len(angles)) * dose_per_tilt + dose_per_tilt / 2.0
    damage = np.exp(-prior_dose[:, None, None] / (2.0 * critical_exposure(k)[None]))
    return (h[None] * damage).astype(np.float32)


def reconstruct_signal_and_noise(
    volume: np.ndarray, mic: Microscope, voxel_size: float, crop: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free WBP of ``volume`` through ``mic`` and the WBP of unit white noise in the same tilt series.

    Both are the central ``crop`` x ``crop`` x ``crop`` (whole volume if ``crop`` is None). Reconstruction is
    linear, so ``clean + a * noise`` is the reconstruction at noise level ``a``: see :func:`mix_at_snr`.
    """
    clean, noise = reconstruct_together([volume], mic, voxel_size, crop, rng)
    return clean, noise


def reconstruct_together(
    volumes: list[np.ndarray], mic: Microscope, voxel_size: float, crop: int | None, rng: np.random.Generator
) -> list[np.ndarray]:
    """The noise-free WBPs of ``volumes`` (same shape) through one draw of ``mic``, then the WBP of unit white
    noise in that tilt series: one back-projection for all of them (:func:`reconstruct_signal_and_noise` is
    the case of one volume; a second is the central particle alone, whose signal ``mix_at_snr`` may refer to).
    """
    nz, ny, nx = volumes[0].shape
    angles = mic.angles
    # side by side along the tilt axis y, whose rows project independently: one projector built for all (a series
    # with alignment errors has its own, uncached) and the same numbers as one projection each
    joint = project(np.concatenate(volumes, axis=1), mic.true_angles)
    series = [joint[:, i * ny : (i + 1) * ny] for i in range(len(volumes))]
    filt = image_filter(mic, ny, series[0].shape[-1], voxel_size)
    series = [np.fft.irfft2(np.fft.rfft2(s) * filt, s=s.shape[-2:]).astype(np.float32) for s in series]
    if crop is not None:
        y0 = crop_start(ny, crop)
        series = [s[:, y0 : y0 + crop, :] for s in series]
    noise = rng.standard_normal(series[0].shape).astype(np.float32)
    rows = series[0].shape[1]
    blocks = np.concatenate([*series, noise], axis=1)  # one back-projection for signals and noise
    rec = weighted_backprojection(blocks, angles, nz, nx, crop, mic.wbp_filter, mic.sirt_iterations)
    return [rec[:, i * rows : (i + 1) * rows] for i in range(len(series) + 1)]


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr: float, signal: np.ndarray | None = None) -> np.ndarray:
    """``clean + a * noise`` with ``a`` chosen so that var(signal) / var(a * noise) = ``snr`` exactly.

    ``signal`` defaults to ``clean`` (the SNR of the whole box); given the central particle alone, the SNR is
    the particle's, and what else the box holds (membranes, neighbours) adds signal without adding noise.
    """
    power = float((clean if signal is None else signal).var())
    scale = np.sqrt(power / (snr * max(float(noise.var()), 1e-30)))
    return (clean + scale * noise).astype(np.float32)


def acquire_and_reconstruct(
    volume: np.ndarray,
    mic: Microscope,
    voxel_size: float,
    crop: int | None,
    snr: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tilt series of ``volume`` through ``mic``, noise at ``snr`` (None: noise-free), WBP, central crop."""
    clean, noise = reconstruct_signal_and_noise(volume, mic, voxel_size, crop, rng)
    return clean if snr is None else mix_at_snr(clean, noise, snr)
