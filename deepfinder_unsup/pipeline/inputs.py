"""Checks and readers shared by the jobs that take picks: writable outputs, non-empty object lists whose
``tomo_idx`` fit the tomograms, RELION STAR picks matched to their tomogram files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.files import InputError
from ..io.mrc import read_mrc_size, read_mrc_voxel_size
from ..io.star import read_star
from ..log import logger

BINNED_MIN_PICKS = 10  # fewer picks may all sit in one corner by chance


def require_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and check that a file can be written in it (fail before long work)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder}: output folder is not writable")


UNSET_VOXEL_SIZE_A = 1.0  # what IMOD and other programs write in the header when the pixel size is not known


def check_tomogram_headers(tomograms: Sequence, voxel_size: float | None) -> None:
    """Each tomogram exists and has a readable MRC header that does not say 1 Å per voxel without ``voxel_size``
    (:func:`refuse_unset_voxel_size`); a warning for each whose header gives another voxel size than the one given
    (``--voxel-size`` overrides the header: meant for headers that say 0 or 1)."""
    for tomogram in tomograms:
        header = read_mrc_voxel_size(tomogram)
        if voxel_size is None:
            refuse_unset_voxel_size(tomogram, header)
        if voxel_size and header > 0 and abs(header - voxel_size) > 0.01 * header:
            logger.warning(f"{tomogram}: its header says {header:g} Å per voxel; using the {voxel_size:g} Å given")


def refuse_unset_voxel_size(
    tomogram, header_voxel_size: float, fix: str = "give the voxel size with --voxel-size (--voxel-size 1 if it is)"
) -> None:
    """A tomogram whose header says 1 Å per voxel carries the value written when the pixel size is not known (IMOD's
    default), not a reconstruction's (5-20 Å binned): read as 1 Å, a 400 Å box became 400^3 voxels per pick, hours
    and gigabytes for features of nothing the model saw (session 50). One error asking for ``--voxel-size``."""
    if header_voxel_size == UNSET_VOXEL_SIZE_A:
        raise InputError(
            f"{tomogram}: its header says 1 Å per voxel, the value written when the pixel size is not known "
            f"(IMOD's default), not a tomogram's; {fix}"
        )


def require_picks(objl: list, path, action: str, tomograms: Sequence) -> None:
    """One clear error naming the picks file when it holds no particle or a ``tomo_idx`` beyond the tomograms
    given (checked before any work, so no partial file is left and no unit fails on it later); a warning when the
    picks look binned differently from their tomogram."""
    from ..extract import check_objl

    if not objl:
        raise InputError(f"{path}: the object list is empty: no particles to {action}")
    check_objl(objl, len(tomograms), str(path))
    warn_if_picks_look_binned(objl, path, tomograms)


def warn_if_picks_look_binned(objl: list, path, tomograms: Sequence) -> None:
    """Warn when all the picks of a tomogram lie in the first half of each of its axes: coordinates picked on a
    more binned tomogram (bin 4 picks on a bin 2 tomogram) fall there, inside the volume, and raise no error."""
    by_tomogram: dict[int, list] = {}
    for obj in objl:
        by_tomogram.setdefault(int(obj.get("tomo_idx") or 0), []).append((obj["x"], obj["y"], obj["z"]))
    for idx, xyz in by_tomogram.items():
        if len(xyz) < BINNED_MIN_PICKS:
            continue
        size = np.array(read_mrc_size(tomograms[idx]), float)
        reach = np.asarray(xyz, float).max(axis=0) / size
        if (reach < 0.5).all():
            logger.warning(
                f"{path}: all {len(xyz)} picks in {tomograms[idx]} lie within the first {reach.max():.0%} of each "
                f"axis of its {' x '.join(str(int(n)) for n in size)} voxels (x y z): were they picked on a more "
                f"binned tomogram? Coordinates are voxels of the tomogram given; scale them if so"
            )


def read_star_picks(
    star_path, tomograms: Sequence[str], voxel_size: float | None = None, tomogram_size=None, tomograms_star=None
) -> list:
    """STAR picks with ``tomo_idx`` pointing into ``tomograms``: each particle's rlnTomoName (or
    rlnMicrographName) must name one tomogram file (the same base name, file suffixes and Warp's '_8.00Apx' aside),
    unless a single tomogram is given. Each tomogram's size and voxel size come from ``tomograms_star`` (RELION's
    tomograms.star) when given, else from its MRC header (``voxel_size`` / ``tomogram_size`` override them)."""
    from ..io.star import match_tomogram, read_tomograms_star, star_tomogram_names

    names = star_tomogram_names(star_path)
    if len(tomograms) == 1 and len(names) > 1:
        raise InputError(
            f"{star_path}: particles come from {len(names)} tomograms ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''}) but one --tomograms file was given; give one MRC "
            f"file per tomogram, named like its rlnTomoName"
        )
    if len(tomograms) > 1 and not names:
        raise InputError(
            f"{star_path}: no rlnTomoName (or rlnMicrographName) column, but {len(tomograms)} tomograms were given: "
            f"the file does not say which tomogram each particle is in"
        )
    index = {}
    for name in names:
        i = 0 if len(tomograms) == 1 else match_tomogram(name, tomograms)
        if i is None:
            stems = ", ".join(Path(t).name for t in tomograms)
            raise InputError(
                f"{star_path}: particle tomogram {name!r} matches none (or several) of the --tomograms ({stems})"
            )
        index[name] = i
    from_star = read_tomograms_star(tomograms_star) if tomograms_star else {}
    geometry = {}
    for name, i in index.items():
        vs = voxel_size or read_mrc_voxel_size(tomograms[i]) or None  # DeepFinder writes 0: needed by RELION 4/5 only
        size = tuple(tomogram_size) if tomogram_size is not None else read_mrc_size(tomograms[i])
        geometry[name] = from_star.get(name, (size, vs))
    single = next(iter(geometry.values())) if len(tomograms) == 1 and geometry else (None, None)
    if len(tomograms) == 1 and not geometry:
        vs = voxel_size or read_mrc_voxel_size(tomograms[0]) or None
        single = (tuple(tomogram_size) if tomogram_size is not None else read_mrc_size(tomograms[0]), vs)
    objl = read_star(star_path, tomogram_size=single[0], pixel_size=single[1], geometry=geometry)
    for obj in objl:
        tomo_name = obj.get("tomo_name")
        obj["tomo_idx"] = index[tomo_name] if tomo_name is not None else 0
    return objl
