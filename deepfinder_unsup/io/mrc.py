"""MRC volumes: memory-mapped reading with the voxel size, atomic writing with the voxel size set.

Volumes come back as ``[z, y, x]`` whatever the file's axis order: MRC2014 lets a file store its columns, rows and
sections along any permutation of X, Y, Z (header ``mapc, mapr, maps``; some EMDB maps and older packages do), and
``mrcfile`` returns the data as stored, so a file in another order is transposed here (a view, also of a memory map)
instead of being read as a mirrored volume.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np

from .files import InputError, atomic_path, require_file


def _open_mrc(path: Path, mmap: bool):
    try:
        if mmap:
            return mrcfile.mmap(path, mode="r", permissive=False)
        return mrcfile.open(path, mode="r", permissive=False)
    except Exception as exc:  # mrcfile raises ValueError / OSError / EOFError on corrupt files
        raise InputError(f"{path}: not a readable MRC file ({exc})") from exc


def axis_order(header, path: Path) -> tuple[int, int, int]:
    """The data axes' order that gives ``[z, y, x]``: the transpose of the stored ``[section, row, column]``
    array (``(0, 1, 2)`` for the standard mapc, mapr, maps = 1, 2, 3)."""
    stored = (int(header.maps), int(header.mapr), int(header.mapc))  # the X/Y/Z axis along each data axis
    if sorted(stored) != [1, 2, 3]:
        raise InputError(
            f"{path}: header axis order mapc, mapr, maps = {stored[2]}, {stored[1]}, {stored[0]} is not a "
            f"permutation of 1, 2, 3"
        )
    return (stored.index(3), stored.index(2), stored.index(1))


def header_size_xyz(header, path: Path) -> tuple[int, int, int]:
    """The volume's size along X, Y, Z in voxels, whatever the file's axis order."""
    order = axis_order(header, path)
    stored = (int(header.nz), int(header.ny), int(header.nx))  # sections, rows, columns
    z, y, x = (stored[i] for i in order)
    return (x, y, z)


def header_voxel_size(mrc, path: Path, voxel_size: float | None) -> float:
    """The voxel size in Å: the caller's value if given, else the header's (which must be > 0)."""
    if voxel_size is not None:
        if voxel_size <= 0:
            raise InputError(f"{path}: voxel size must be positive, got {voxel_size}")
        return float(voxel_size)
    vs = mrc.voxel_size
    sizes = [float(vs.x), float(vs.y), float(vs.z)]
    if min(sizes) <= 0:
        raise InputError(
            f"{path}: header voxel size is {sizes[0]:g} Å (unset); give the voxel size "
            f"explicitly (voxel_size=..., CLI: --voxel-size)"
        )
    if max(sizes) - min(sizes) > 1e-3 * max(sizes):
        raise InputError(f"{path}: anisotropic voxel size {sizes} Å is not supported")
    return sizes[0]


def _volume_of(mrc, path: Path, voxel_size: float | None) -> tuple[np.ndarray, float]:
    """The 3-D data of an open MRC file and its voxel size (checked)."""
    vs = header_voxel_size(mrc, path, voxel_size)
    data = mrc.data
    if data is None or data.ndim != 3:
        raise InputError(f"{path}: expected a 3-D volume, found shape {None if data is None else data.shape}")
    order = axis_order(mrc.header, path)
    return (data if order == (0, 1, 2) else data.transpose(order)), vs


def read_mrc(path: str | os.PathLike, voxel_size: float | None = None, mmap: bool = False) -> tuple[np.ndarray, float]:
    """Read an MRC volume as ``[z, y, x]`` and its voxel size in Å.

    With ``mmap=True`` the array is a read-only memory map (nothing is loaded until indexed): use it
    for whole tomograms. ``voxel_size`` overrides the header (required when the header says 0).
    """
    path = require_file(path, "MRC file")
    mrc = _open_mrc(path, mmap)
    try:
        data, vs = _volume_of(mrc, path, voxel_size)
        if not mmap:
            data = np.asarray(data, dtype=np.float32).copy()
    finally:
        if not mmap:
            mrc.close()
    return data, vs


@contextlib.contextmanager
def mapped_mrc(path: str | os.PathLike, voxel_size: float | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """``with mapped_mrc(path) as (volume, voxel_size):`` a read-only memory map, closed on exit."""
    path = require_file(path, "MRC file")
    mrc = _open_mrc(path, True)
    try:
        yield _volume_of(mrc, path, voxel_size)
    finally:
        mrc.close()


def read_mrc_geometry(path: str | os.PathLike) -> tuple[tuple[int, int, int], float]:
    """((size x, y, z) voxels, voxel size Å) from an MRC header, without reading the data."""
    path = require_file(path, "MRC file")
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=False) as mrc:
            size = header_size_xyz(mrc.header, path)
            vs = header_voxel_size(mrc, path, None)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: not a readable MRC file ({exc})") from exc
    return size, vs


def read_mrc_size(path: str | os.PathLike) -> tuple[int, int, int]:
    """The (x, y, z) size in voxels of an MRC file, whatever its header says about the voxel size."""
    path = require_file(path, "MRC file")
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=False) as mrc:
            return header_size_xyz(mrc.header, path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: not a readable MRC file ({exc})") from None


def read_mrc_voxel_size(path: str | os.PathLike) -> float:
    """The header voxel size of an MRC file in Å (0 when unset)."""
    path = require_file(path, "MRC file")
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=False) as mrc:
            return float(mrc.voxel_size.x)
    except Exception as exc:  # mrcfile raises ValueError / OSError / EOFError on corrupt headers
        raise InputError(f"{path}: not a readable MRC file ({exc})") from None


def write_mrc(volume: np.ndarray, path: str | os.PathLike, voxel_size: float, overwrite: bool = False) -> Path:
    """Write a ``[z, y, x]`` volume as float32 MRC with its voxel size in the header, atomically."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"{path}: expected a 3-D volume to write, got shape {volume.shape}")
    if not voxel_size or voxel_size <= 0:
        raise InputError(f"{path}: a positive voxel size is required to write an MRC file")
    with atomic_path(path, overwrite) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(volume.astype(np.float32, copy=False))
            mrc.voxel_size = float(voxel_size)
            mrc.update_header_stats()
    return Path(path)
