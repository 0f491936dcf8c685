"""Input matching: estimate from the user's own sub-tomograms what the simulator can reproduce, and a
``SimConfig`` randomised around it (``simulate --like``, ``adapt --method like``).

Estimated from the mean power spectrum of many boxes (picks, or random boxes of a tomogram), at the output
voxel size, with no labels:

- the missing wedge: the power of each direction in the k_x-k_z plane (the tilt axis is y), in a band of low
  frequencies; the sampled directions are the tilt range (WBP leaves the missing wedge nearly empty);
- a low-pass (a denoised or filtered look): by analysis by synthesis, candidates simulated and the one whose
  radial power profile (inside the sampled wedge) is closest kept;
- the contrast polarity: whether the picks' centres are darker or brighter than their surroundings.

The voxel size comes from the file header. What is not estimated (defocus, dose, SNR, noise colour, crowding) keeps the
simulator's wide defaults, so training data cover the user's microscope rather than guess it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..log import logger
from ..volume import normalise
from .config import SimConfig

BAND = (0.04, 0.14)  # cycles/voxel: below every low-pass the simulator uses, above the particle's shape
WEDGE_BAND = (0.08, 0.2)  # far enough from the origin that the window's blur spans few degrees
WEDGE_DROP = 0.35  # decades below the sampled directions' level that mark the wedge's edge
NARROWEST_TILT = 20.0  # degrees each side of 0: a matched tilt range reaches at least this far


@dataclass
class AcquisitionEstimate:
    """What ``estimate_acquisition`` found (angles in degrees, frequencies as fractions of Nyquist)."""

    n_boxes: int
    tilt_min: float
    tilt_max: float
    lowpass: float | None
    polarity: int

    def to_dict(self) -> dict:
        return asdict(self)


def mean_power_spectrum(volumes: np.ndarray) -> np.ndarray:
    """Mean |FFT|^2 of the normalised boxes under a 3-D Hann window (no box-edge cross), DC at the centre."""
    n = volumes.shape[1]
    w = np.hanning(n)
    window = w[:, None, None] * w[None, :, None] * w[None, None, :]
    total = np.zeros((n, n, n))
    for v in normalise(np.asarray(volumes, np.float32)):
        total += np.abs(np.fft.fftn(v * window)) ** 2
    return np.fft.fftshift(total / len(volumes))


def _frequency_grids(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.fft.fftshift(np.fft.fftfreq(n))
    return np.meshgrid(f, f, f, indexing="ij")  # kz, ky, kx


def wedge_profile(power: np.ndarray, band=BAND, step: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """(angles, mean relative power) of directions in the k_x-k_z plane, angle from k_x towards k_z in (-90, 90]
    (= the tilt angle whose projection samples that direction); bins the lattice misses are interpolated."""
    kz, ky, kx = _frequency_grids(power.shape[0])
    radius = np.sqrt(kx**2 + ky**2 + kz**2)
    in_plane = np.sqrt(kx**2 + kz**2)
    shells = np.round(radius * power.shape[0]).astype(int)
    shell_mean = np.bincount(shells.ravel(), power.ravel()) / np.maximum(np.bincount(shells.ravel()), 1)
    relative = power / np.maximum(shell_mean[shells], 1e-30)  # each voxel against its own frequency shell
    sel = (radius >= band[0]) & (radius <= band[1]) & (np.abs(ky) <= 0.5 * in_plane)
    angle = np.degrees(np.arctan2(kz[sel], kx[sel]))
    angle = np.where(angle <= -90, angle + 180, angle)
    angle = np.where(angle > 90, angle - 180, angle)
    edges = np.arange(-90, 90 + step, step)
    idx = np.clip(np.digitize(angle, edges) - 1, 0, len(edges) - 2)
    sums = np.bincount(idx, relative[sel], minlength=len(edges) - 1)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    centres = edges[:-1] + step / 2
    hit = counts > 0
    return centres, np.interp(centres, centres[hit], sums[hit] / counts[hit])


def estimate_tilt_range(power: np.ndarray) -> tuple[float, float]:
    """The contiguous range of sampled directions around k_x (tilt 0): power within ``WEDGE_DROP`` decades of
    the level of the sampled directions (the median of the upper half)."""
    angles, profile = wedge_profile(power, WEDGE_BAND)
    logp = np.log10(np.maximum(profile, 1e-30))
    sampled = logp > np.median(logp[logp >= np.median(logp)]) - WEDGE_DROP
    centre = int(np.argmin(np.abs(angles)))
    lo = hi = centre
    while lo > 0 and sampled[lo - 1]:
        lo -= 1
    while hi < len(angles) - 1 and sampled[hi + 1]:
        hi += 1
    step = angles[1] - angles[0]
    return float(angles[lo] - step / 2), float(angles[hi] + step / 2)


def radial_profile(power: np.ndarray, tilt_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(frequency in cycles/voxel, mean power) over the sampled directions only."""
    n = power.shape[0]
    kz, ky, kx = _frequency_grids(n)
    radius = np.sqrt(kx**2 + ky**2 + kz**2)
    angle = np.degrees(np.arctan2(kz, np.where(kx == 0, 1e-9, kx)))
    angle = np.where(angle > 90, angle - 180, np.where(angle <= -90, angle + 180, angle))
    inside = (angle >= tilt_range[0] + 5) & (angle <= tilt_range[1] - 5)
    shells = np.round(radius * n).astype(int)
    sel = inside & (shells >= 1) & (shells <= n // 2)
    sums = np.bincount(shells[sel], power[sel], minlength=n // 2 + 1)
    counts = np.bincount(shells[sel], minlength=n // 2 + 1)
    freqs = np.arange(n // 2 + 1) / n
    keep = counts > 0
    return freqs[keep], sums[keep] / counts[keep]


LOWPASSES = (None, 0.6, 0.45, 0.35, 0.25)
SYNTHESIS_BOXES = 32  # boxes simulated per low-pass candidate (match_lowpass's default)
PROFILE_RANGE = (0.03, 0.45)  # cycles/voxel compared between the user's boxes and the simulated ones


def log_profile_shape(volumes: np.ndarray, tilt_range: tuple[float, float]) -> np.ndarray:
    """The radial power profile's shape: log10 power in the sampled directions, its mean removed."""
    freqs, profile = radial_profile(mean_power_spectrum(volumes), tilt_range)
    sel = (freqs >= PROFILE_RANGE[0]) & (freqs <= PROFILE_RANGE[1])
    logp = np.log10(np.maximum(profile[sel], 1e-30))
    return logp - logp.mean()


def match_lowpass(
    volumes: np.ndarray, tilt_range: tuple[float, float], polarity: int, n: int | None = None, seed: int = 0
) -> tuple[float | None, list[dict]]:
    """(low-pass as a fraction of Nyquist or None, every candidate's error): analysis by synthesis. For each
    candidate, ``n`` boxes are simulated (pseudo-molecules, the estimated wedge and polarity, the other settings
    wide) and their radial power profile compared with the user's; the closest wins. The CTF, B-factor and
    interpolation shape the spectrum too, so candidates are simulated rather than fitted analytically. (The
    noise colour was tried the same way and not identified: it stays randomised.) The candidates are simulated
    at the user's box size, so the two profiles sample the same frequencies."""
    from .scene import StructureLibrary, simulate_subtomogram
    from .structures import load_structures

    n = n or SYNTHESIS_BOXES
    target = log_profile_shape(volumes, tilt_range)
    library = StructureLibrary(load_structures(["procedural:6:900000"], 10.0))
    table, box = [], volumes.shape[1]
    for lowpass in LOWPASSES:
        cfg = SimConfig(
            box_size=box, tilt_min=tilt_range[0], tilt_max=tilt_range[1], lowpass=lowpass, polarity=polarity
        )
        rng = np.random.default_rng(seed)
        sims = np.stack([simulate_subtomogram(library, int(rng.integers(0, 7)), cfg, rng)[0] for _ in range(n)])
        error = float(np.mean((log_profile_shape(sims, tilt_range) - target) ** 2))
        table.append({"lowpass": lowpass, "error": round(error, 5)})
    best = min(table, key=lambda row: np.inf if row["error"] is None else row["error"])
    return best["lowpass"], table


def estimate_polarity(volumes: np.ndarray, radius: float = 4.0) -> int:
    """+1 when the picks' centres are darker than the box (the simulator's ``polarity`` 1), -1 when brighter."""
    n = volumes.shape[1]
    z, y, x = np.ogrid[:n, :n, :n]
    c = n // 2
    centre = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius**2
    means = normalise(np.asarray(volumes, np.float32))[:, centre].mean(axis=1)
    return 1 if np.median(means) < 0 else -1


def estimate_acquisition(volumes: np.ndarray, seed: int = 0) -> AcquisitionEstimate:
    """Everything this module estimates, from boxes (N, B, B, B) at the output voxel size."""
    volumes = np.asarray(volumes)
    if volumes.ndim != 4 or len(volumes) < 10:
        raise ValueError(f"need at least 10 boxes (N, B, B, B) to estimate an acquisition, got {volumes.shape}")
    tilt = estimate_tilt_range(mean_power_spectrum(volumes))
    polarity = estimate_polarity(volumes)
    lowpass, _ = match_lowpass(volumes, tilt, polarity, seed=seed)
    return AcquisitionEstimate(len(volumes), tilt[0], tilt[1], lowpass, polarity)


def config_like(estimate: AcquisitionEstimate, base: SimConfig | None = None, spread: float = 5.0) -> SimConfig:
    """``base`` (default: the wide ``SimConfig()``) with the estimated quantities drawn around the estimate.

    A tilt range estimated narrower than +-``NARROWEST_TILT`` (boxes whose power is not a tilt series' wedge,
    e.g. strongly oriented content) is matched with +-``NARROWEST_TILT`` and a warning, never an inverted range."""
    cfg = base or SimConfig()
    low = float(np.clip(estimate.tilt_min, -90.0, -NARROWEST_TILT))
    high = float(np.clip(estimate.tilt_max, NARROWEST_TILT, 90.0))
    if (low, high) != (estimate.tilt_min, estimate.tilt_max):
        logger.warning(
            f"the tilt range estimated from the boxes ({estimate.tilt_min:.0f}, {estimate.tilt_max:.0f} degrees) is "
            f"not a tilt series' (+-{NARROWEST_TILT:.0f} to +-90); simulating ({low:.0f}, {high:.0f}) instead"
        )
    cfg.tilt_min = [max(-90.0, low - spread), min(-NARROWEST_TILT, low + spread)]
    cfg.tilt_max = [max(NARROWEST_TILT, high - spread), min(90.0, high + spread)]
    cfg.lowpass = None if estimate.lowpass is None else [max(0.1, estimate.lowpass - 0.05), estimate.lowpass + 0.05]
    cfg.polarity = estimate.polarity
    cfg.validate()
    return cfg
