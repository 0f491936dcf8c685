"""Volume primitives shared by every layer: normalisation, resampling, the box centre, crop and pad.

The box centre convention is DeepFinder's extraction: in a box of ``n`` voxels the centre is index ``n // 2``
(``tomo[z - B/2 : z + B/2]``). Resampling maps a volume's centre ``n // 2`` onto the new volume's ``m // 2``,
and crop / pad keep index ``n // 2`` at ``box // 2``, so a particle at the centre stays there through any
chain of them. Volumes are ``[z, y, x]`` float32.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def box_centre(n: int) -> int:
    """The centre index of a box of ``n`` voxels (DeepFinder's convention)."""
    return int(n) // 2


def crop_start(n: int, box: int) -> int:
    """First index of the ``box``-voxel window of an ``n``-voxel axis that keeps the centres together
    (negative when the box is larger: the padding before the volume)."""
    return box_centre(n) - box_centre(box)


def normalise(volumes: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation per volume (first axis indexes volumes), float32."""
    volumes = np.asarray(volumes, dtype=np.float32)
    axes = tuple(range(1, volumes.ndim))
    mean = volumes.mean(axis=axes, keepdims=True)
    std = volumes.std(axis=axes, keepdims=True)
    return (volumes - mean) / np.maximum(std, 1e-8)


def phase_randomised(volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A volume with ``volume``'s amplitude spectrum and random phases: its power spectrum (the noise's colour,
    the missing wedge, any low-pass) without its structure. The phases are a white-noise volume's, so the
    result is real and keeps the volume's energy."""
    volume = np.asarray(volume, np.float64)
    phases = np.fft.rfftn(rng.standard_normal(volume.shape))
    phases /= np.maximum(np.abs(phases), 1e-12)
    axes = tuple(range(volume.ndim))  # NumPy 2 deprecates s without axes
    return np.fft.irfftn(np.abs(np.fft.rfftn(volume)) * phases, s=volume.shape, axes=axes).astype(np.float32)


def antialias_sigma(source_voxel: float, target_voxel: float) -> float:
    """Gaussian sigma (source voxels) applied before downsampling by ``f = target / source``; 0 when upsampling.

    The blur brings the effective resolution to a Gaussian of FWHM ``f`` source voxels (the new voxel), the
    source's own voxel (FWHM 1) counted: ``sigma = sqrt(f^2 - 1) / 2.355``. At f = 2 the source's Nyquist
    frequency, which would alias onto the new grid's zero frequency, keeps 7 % of its amplitude.
    """
    factor = target_voxel / source_voxel
    return float(np.sqrt(factor**2 - 1.0) / 2.3548) if factor > 1 else 0.0


def resample_volume(volume: np.ndarray, source_voxel: float, target_voxel: float, order: int = 3) -> np.ndarray:
    """Resample a whole ``[z, y, x]`` volume to another voxel size, keeping its physical extent and centre.

    ``order``: spline order of the interpolation (3 = cubic; the simulator uses 1 for speed).
    """
    volume = np.asarray(volume, dtype=np.float32)
    if abs(source_voxel - target_voxel) < 1e-6 * target_voxel:
        return volume
    sigma = antialias_sigma(source_voxel, target_voxel)
    if sigma > 0:
        volume = ndimage.gaussian_filter(volume, sigma)
    scale = source_voxel / target_voxel
    out_shape = tuple(max(1, int(round(n * scale))) for n in volume.shape)
    # map output voxel centres onto input coordinates, box centre (n // 2) to box centre
    ratio = target_voxel / source_voxel
    offsets = [box_centre(n_in) - box_centre(n_out) * ratio for n_in, n_out in zip(volume.shape, out_shape)]
    return ndimage.affine_transform(
        volume, np.full(3, ratio), offset=offsets, output_shape=out_shape, order=order, mode="nearest"
    )


def crop_or_pad(volume: np.ndarray, box_size: int) -> np.ndarray:
    """Centre-crop or zero-pad (after mean subtraction) a cubic-ish volume to ``box_size``^3."""
    volume = np.asarray(volume, dtype=np.float32)
    out = np.full((box_size,) * 3, float(volume.mean()), dtype=np.float32)
    src, dst = [], []
    for n in volume.shape:
        start = crop_start(n, box_size)  # index n // 2 lands at box_size // 2
        if n >= box_size:
            src.append(slice(start, start + box_size))
            dst.append(slice(0, box_size))
        else:
            src.append(slice(0, n))
            dst.append(slice(-start, -start + n))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def flip_about_centre(volumes: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Reverse ``volumes`` (N, B, B, B) along the given volume axes (0 z, 1 y, 2 x) about the centre index
    ``n // 2`` (a plain reversal would move it to ``n - 1 - n // 2``: one voxel off for even ``n``)."""
    out = np.asarray(volumes)
    for axis in axes:
        n = out.shape[axis + 1]
        out = np.roll(np.flip(out, axis + 1), 2 * box_centre(n) - (n - 1), axis=axis + 1)
    return out


WEDGE_VIEW_AXES = ((0, 1), (0, 2), (1, 2))  # flips = 180 degree rotations about x, y, z (volume axes z, y, x)


def wedge_symmetric_views(volumes: np.ndarray) -> list[np.ndarray]:
    """The volumes and their three 180 degree rotations about x, y and z through the box centre (a group: a
    view of a view is a view). Each is a sub-tomogram a microscope could have recorded (tilt axis y, beam z):
    about y any missing wedge maps onto itself; about x or z a tilt range -a/+b becomes -b/+a (the same for a
    symmetric one). Chirality is kept: no mirror."""
    return [np.asarray(volumes)] + [flip_about_centre(volumes, axes) for axes in WEDGE_VIEW_AXES]


def random_wedge_symmetric_view(volumes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each volume turned by one of the three rotations of ``wedge_symmetric_views`` (not the identity),
    drawn at random: the second view of a training pair."""
    volumes = np.asarray(volumes)
    choice = rng.integers(0, len(WEDGE_VIEW_AXES), len(volumes))
    out = np.empty_like(volumes)
    for i, axes in enumerate(WEDGE_VIEW_AXES):
        out[choice == i] = flip_about_centre(volumes[choice == i], axes)
    return out
