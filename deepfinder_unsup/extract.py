"""Sub-tomograms from tomograms (memory-mapped), MRC files or data set files, at the model's voxel size.

This is the one place where volumes are resampled. A particle at voxel ``(x, y, z)`` of its tomogram lands at
index ``[B/2, B/2, B/2]`` of its box (DeepFinder's ``tomo[z-B/2:z+B/2, ...]``). Resampling interpolates with
cubic splines at the exact particle position; when downsampling, the source is first low-pass filtered with a
Gaussian of sigma ``(f - 1) / 2`` source voxels (``f`` = target / source voxel size) against aliasing.
Every sub-tomogram is normalised to zero mean and unit standard deviation.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import mmap
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from .io.dataset import read_dataset
from .io.files import InputError
from .io.mrc import mapped_mrc, read_mrc
from .io.objl import Objl
from .volume import antialias_sigma, crop_or_pad, normalise, resample_volume  # noqa: F401 (re-exported)

BORDER_MODES = ("skip", "pad")


def _box_window(center_xyz, box_size: int, source_voxel: float, target_voxel: float, margin: int):
    """Integer source window [lo, hi) per axis (z, y, x) that covers the target box plus a margin."""
    half = box_size / 2.0 * target_voxel / source_voxel
    c_zyx = np.asarray(center_xyz, float)[::-1]
    lo = np.floor(c_zyx - half).astype(int) - margin
    hi = np.ceil(c_zyx + half).astype(int) + margin + 1
    return lo, hi


def extract_one(
    tomogram: np.ndarray, center_xyz, box_size: int, source_voxel: float, target_voxel: float
) -> tuple[np.ndarray, bool]:
    """One un-normalised box at ``target_voxel`` around ``center_xyz`` (voxels of the tomogram).

    Returns (box, crossed_border). Voxels outside the tomogram are filled with the mean of those inside.
    """
    shape = np.array(tomogram.shape)
    same_size = abs(source_voxel - target_voxel) < 1e-6 * target_voxel
    if same_size:
        c = np.round(np.asarray(center_xyz, float)[::-1]).astype(int)
        lo, hi = c - box_size // 2, c - box_size // 2 + box_size
    else:
        sigma = antialias_sigma(source_voxel, target_voxel)
        lo, hi = _box_window(center_xyz, box_size, source_voxel, target_voxel, margin=3 + int(np.ceil(3 * sigma)))
    crossed = bool(np.any(lo < 0) or np.any(hi > shape))
    lo_c, hi_c = np.maximum(lo, 0), np.minimum(hi, shape)
    # a copy, never a view: a view into a memory-mapped tomogram would keep its pages mapped (and the file open)
    region = np.array(tomogram[lo_c[0] : hi_c[0], lo_c[1] : hi_c[1], lo_c[2] : hi_c[2]], dtype=np.float32, order="C")
    if crossed:
        full = np.full(tuple(hi - lo), region.mean() if region.size else 0.0, dtype=np.float32)
        full[tuple(slice(a - l, b - l) for a, b, l in zip(lo_c, hi_c, lo))] = region
        region = full
    if same_size:
        return region, crossed
    sigma = antialias_sigma(source_voxel, target_voxel)
    if sigma > 0:
        region = ndimage.gaussian_filter(region, sigma, mode="nearest")
    ratio = target_voxel / source_voxel
    grid = (np.arange(box_size) - box_size // 2) * ratio
    c_local = np.asarray(center_xyz, float)[::-1] - lo
    coords = np.stack(np.meshgrid(c_local[0] + grid, c_local[1] + grid, c_local[2] + grid, indexing="ij"))
    box = ndimage.map_coordinates(region, coords, order=3, mode="nearest")
    return box.astype(np.float32), crossed


def release_pages(array: np.ndarray) -> None:
    """Drop the resident pages of a memory-mapped array (they stay in the page cache, re-read on access).

    Reading particles all over a large tomogram would otherwise leave the whole file mapped in the
    process's resident memory (the kernel maps 64 kB around each touched row). Cheap: empty page tables are
    skipped, so calling it once per particle costs microseconds.
    """
    mapping = getattr(array, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def check_volumes(volumes: np.ndarray, where: str, names: Sequence[str] | None = None) -> None:
    """Refuse volumes with NaN / inf voxels or all voxels equal (nothing to normalise, nothing to embed).

    ``names``: what each volume is (a file, a particle), for the error message.
    """
    volumes = np.asarray(volumes)
    flat = volumes.reshape(len(volumes), -1)
    finite = np.isfinite(flat).all(axis=1)
    constant = np.zeros(len(flat), bool)
    constant[finite] = flat[finite].min(axis=1) == flat[finite].max(axis=1)
    for bad, problem in ((~finite, "has NaN or infinite voxels"), (constant, "has all voxels equal (no signal)")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = names[i] if names is not None else f"sub-tomogram {i}"
            more = f" ({int(bad.sum())} such in all)" if bad.sum() > 1 else ""
            raise InputError(f"{where}: {what} {problem}{more}")


def _check_box_parameters(box_size: int, voxel_size: float) -> None:
    if int(box_size) < 4:
        raise InputError(f"box size must be at least 4 voxels, got {box_size}")
    if not voxel_size or not np.isfinite(voxel_size) or voxel_size <= 0:
        raise InputError(f"voxel size must be a positive number of Å, got {voxel_size}")


def check_objl(objl: Objl, n_tomos: int, where: str) -> None:
    """One clear error when the list is empty or an object's ``tomo_idx`` points past the tomograms given."""
    if len(objl) == 0:
        raise InputError(f"{where}: the object list is empty: no particles to extract")
    unplaced = [i for i, obj in enumerate(objl) if obj.get("tomo_idx") is None]
    if unplaced and n_tomos > 1:  # each would be read from the first tomogram
        raise InputError(
            f"{where}: object {unplaced[0]} has no tomo_idx ({len(unplaced)} such in all) but {n_tomos} tomograms "
            f"were given: say which tomogram each object is in (tomo_idx, from 0), or give one tomogram"
        )
    for i, obj in enumerate(objl):
        idx = obj.get("tomo_idx") or 0
        if not 0 <= idx < n_tomos:
            raise InputError(
                f"{where}: object {i} has tomo_idx {idx}, but {n_tomos} tomogram(s) were given "
                f"(tomo_idx indexes the tomogram list, from 0)"
            )


def iter_subtomograms(
    tomograms: Sequence[str | os.PathLike],
    objl: Objl,
    box_size: int = 40,
    voxel_size: float = 10.0,
    batch_size: int = 64,
    border: str = "skip",
    tomogram_voxel_size: float | None = None,
    normalize: bool = True,
) -> Iterator[tuple[np.ndarray, Objl]]:
    """Yield (batch (n, B, B, B), object list of the batch) from memory-mapped tomograms.

    Memory stays at one batch plus one particle's source window, whatever the number of particles.
    Objects keep their order (skipped ones excepted) and get ``source`` (tomogram path) and, with
    ``border='pad'``, ``border_padded`` (True when the box crossed the tomogram border).
    """
    if border not in BORDER_MODES:
        raise InputError(f"border must be one of {', '.join(BORDER_MODES)}, got {border!r}")
    _check_box_parameters(box_size, voxel_size)
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    paths = [Path(t) for t in tomograms]
    check_objl(objl, len(paths), "picks")
    with contextlib.ExitStack() as stack:
        yield from _iter_boxes(
            stack, paths, objl, box_size, voxel_size, batch_size, border, tomogram_voxel_size, normalize
        )


def _iter_boxes(
    stack: contextlib.ExitStack,
    tomograms: list[Path],
    objl: Objl,
    box_size: int,
    voxel_size: float,
    batch_size: int,
    border: str,
    tomogram_voxel_size: float | None,
    normalize: bool,
) -> Iterator[tuple[np.ndarray, Objl]]:
    opened = {}
    batch, batch_objl, skipped = [], [], 0
    for i, obj in enumerate(objl):
        idx = obj.get("tomo_idx") or 0
        if idx not in opened:
            opened[idx] = stack.enter_context(mapped_mrc(tomograms[idx], voxel_size=tomogram_voxel_size))
        tomo, vs = opened[idx]
        xyz = (obj["x"], obj["y"], obj["z"])
        shape_xyz = tomo.shape[::-1]
        if any(not (-0.5 <= c < n - 0.5) for c, n in zip(xyz, shape_xyz)):
            raise InputError(
                f"{tomograms[idx]}: object at (x, y, z) = {xyz} lies outside the tomogram of "
                f"size (x, y, z) = {tuple(shape_xyz)}; are the coordinates binned differently?"
            )
        box, crossed = extract_one(tomo, xyz, box_size, vs, voxel_size)
        release_pages(tomo)  # per particle: a batch of boxes spread over a tomogram would map most of it
        if crossed and border == "skip":
            skipped += 1
            continue
        check_volumes(box[None], str(tomograms[idx]), [f"particle {i} at (x, y, z) = {xyz}: its box"])
        out = copy.copy(obj)
        out["source"] = str(tomograms[idx])
        if border == "pad":
            out["border_padded"] = crossed
        batch.append(box)
        batch_objl.append(out)
        if len(batch) == batch_size:
            yield (normalise(np.stack(batch)) if normalize else np.stack(batch)), batch_objl
            batch, batch_objl = [], []
    if batch:
        yield (normalise(np.stack(batch)) if normalize else np.stack(batch)), batch_objl
    if skipped:
        warnings.warn(
            f"skipped {skipped} of {len(objl)} particles whose box crosses the tomogram border "
            f"(use border='pad' / --border pad to keep them, padded)",
            stacklevel=2,
        )


def extract_subtomograms(
    tomograms: Sequence[str | os.PathLike],
    objl: Objl,
    box_size: int = 40,
    voxel_size: float = 10.0,
    border: str = "skip",
    tomogram_voxel_size: float | None = None,
) -> tuple[np.ndarray, Objl]:
    """Boxes of ``box_size``^3 at ``voxel_size`` Å around every object, normalised.

    ``tomograms`` is a list of MRC paths indexed by each object's ``tomo_idx``; each tomogram's voxel size comes
    from its header (or ``tomogram_voxel_size``). Returns (array (N, B, B, B) float32, object list of the kept
    particles). ``border``: 'skip' drops boxes that cross the tomogram border (with a warning that counts
    them); 'pad' keeps them, filled with the mean of their in-tomogram voxels, flagged ``border_padded``.
    """
    _check_box_parameters(box_size, voxel_size)
    chunks, kept = [], []
    for batch, batch_objl in iter_subtomograms(tomograms, objl, box_size, voxel_size, 256, border, tomogram_voxel_size):
        chunks.append(batch)
        kept.extend(batch_objl)
    if not chunks:
        return np.zeros((0, box_size, box_size, box_size), np.float32), []
    return np.concatenate(chunks), kept


def expand_subtomogram_paths(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """MRC paths from a folder, a glob pattern, or a list of files (sorted)."""
    if isinstance(spec, (list, tuple)):
        return [Path(p) for p in spec]
    spec = str(spec)
    if os.path.isdir(spec):
        paths = sorted(Path(spec).glob("*.mrc")) + sorted(Path(spec).glob("*.rec"))
    else:
        paths = sorted(Path(p) for p in glob.glob(spec))
    if not paths:
        raise InputError(f"{spec}: no sub-tomogram MRC files found (give a folder of .mrc files or a glob)")
    return paths


def load_subtomogram_files(
    spec, box_size: int = 40, voxel_size: float = 10.0, file_voxel_size: float | None = None
) -> tuple[np.ndarray, Objl]:
    """Sub-tomogram MRC files of any box and voxel size -> (N, B, B, B) at ``voxel_size``, normalised.

    Each file is resampled, then centre-cropped or padded to ``box_size`` (files that are not cubic with a warning).
    The object list has one entry per file (``label`` 0, centre coordinates, ``source`` = the file).
    """
    _check_box_parameters(box_size, voxel_size)
    paths = expand_subtomogram_paths(spec)
    boxes, objl, not_cubic, small = [], [], [], []
    for i, path in enumerate(paths):
        vol, vs = read_mrc(path, voxel_size=file_voxel_size)
        check_volumes(vol[None], str(path), ["the volume"])
        if len(set(vol.shape)) > 1:
            not_cubic.append(f"{path} ({' x '.join(map(str, vol.shape[::-1]))} voxels, x y z)")
        if min(vol.shape) * vs < 0.9 * box_size * voxel_size:
            small.append(
                f"{path} ({min(vol.shape) * vs:.0f} Å; at its {vs:g} Å a voxel, re-extract at least "
                f"{_box_covering(box_size * voxel_size, vs)} voxels)"
            )
        vol = crop_or_pad(resample_volume(vol, vs, voxel_size), box_size)
        boxes.append(vol)
        c = box_size // 2
        objl.append(
            {
                "tomo_idx": None,
                "obj_id": i,
                "label": 0,
                "x": float(c),
                "y": float(c),
                "z": float(c),
                "psi": None,
                "phi": None,
                "the": None,
                "cluster_size": None,
                "source": str(path),
            }
        )
    if not_cubic:  # a stack of images or a slab is no sub-tomogram: say so, once
        warnings.warn(
            f"{len(not_cubic)} of {len(paths)} sub-tomogram files are not cubic, e.g. {not_cubic[0]}; each was "
            f"centre-cropped or padded to {box_size}^3",
            stacklevel=2,
        )
    if small:  # the model saw its whole box of surroundings in training, never a flat border
        warnings.warn(
            f"{len(small)} of {len(paths)} sub-tomogram files cover less than the model's "
            f"{box_size * voxel_size:.0f} Å box, e.g. {small[0]}; each was padded: their embeddings compare poorly "
            f"with full boxes (re-extract larger boxes, or give the tomograms and the picks)",
            stacklevel=2,
        )
    return normalise(np.stack(boxes)), objl


def _box_covering(extent_angstrom: float, voxel_size: float) -> int:
    """The smallest even box (voxels, as RELION extracts) that covers ``extent_angstrom`` at ``voxel_size``."""
    n = int(np.ceil(extent_angstrom / voxel_size - 1e-6))
    return n + n % 2


def load_dataset_subtomograms(path, box_size: int = 40, voxel_size: float = 10.0) -> tuple[np.ndarray, Objl]:
    """Sub-tomograms of a data set file, resampled/cropped to the requested box and voxel size, normalised."""
    _check_box_parameters(box_size, voxel_size)
    ds = read_dataset(path)
    data = ds.subtomograms
    check_volumes(data, str(path))
    if abs(ds.voxel_size - voxel_size) > 1e-6 * voxel_size or data.shape[1] != box_size:
        data = np.stack([crop_or_pad(resample_volume(v, ds.voxel_size, voxel_size), box_size) for v in data])
    return normalise(data), ds.objl
