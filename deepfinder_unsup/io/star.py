"""RELION STAR particle files <-> DeepFinder object lists (via the ``starfile`` package).

RELION 3/4 write pixel coordinates ``rlnCoordinateX/Y/Z``; RELION 5 writes coordinates in Å relative to the
tomogram centre, ``rlnCenteredCoordinateX/Y/ZAngst``: ``x_px = x_A / pixel_size + size_x / 2``, which needs the
tomogram size (voxels, x y z) and pixel size. Angles: RELION's ZYZ (rot, tilt, psi) are converted to and from
DeepFinder's ZXZ (phi, the, psi) through rotation matrices (see ``simulate.geometry``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import starfile

from .files import InputError, atomic_path, require_file
from .objl import Objl, new_object

_PIXEL_COLS = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_CENTRED_COLS = ("rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst", "rlnCenteredCoordinateZAngst")
_ANGLE_COLS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_TOMO_COLS = ("rlnTomoName", "rlnMicrographName")


def _particles_table(path: Path) -> pd.DataFrame:
    try:
        data = starfile.read(path, always_dict=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable STAR file ({exc})") from None
    for name in ("particles", ""):
        if name in data and isinstance(data[name], pd.DataFrame):
            return data[name]
    for table in data.values():
        if isinstance(table, pd.DataFrame) and ({*_PIXEL_COLS} <= set(table) or {*_CENTRED_COLS} <= set(table)):
            return table
    raise InputError(f"{path}: no particle table with rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst")


def read_star(
    path: str | os.PathLike,
    tomogram_size: Sequence[int] | None = None,
    pixel_size: float | None = None,
    tomo_names: Sequence[str] | None = None,
) -> Objl:
    """Read RELION 3/4/5 particles into an object list (coordinates in voxels, x y z).

    ``tomogram_size`` (x, y, z voxels) and ``pixel_size`` (Å) are required for RELION 5 centred coordinates.
    ``tomo_idx`` is the index of the particle's tomogram name in ``tomo_names`` (given), or in the sorted
    names found in the file; the name itself is kept under the key ``tomo_name``.
    """
    path = require_file(path, "STAR file")
    table = _particles_table(path)
    if len(table) == 0:
        raise InputError(f"{path}: the particle table is empty")
    coords = _coordinates_voxels(table, path, tomogram_size, pixel_size)
    names = _tomo_names(table)
    order = list(tomo_names) if tomo_names is not None else sorted(set(n for n in names if n is not None))
    angles = _angles_zxz(table, path)
    labels = _class_numbers(table, path)
    objl: Objl = []
    for i in range(len(table)):
        name = names[i]
        if name is not None and name not in order:
            raise InputError(f"{path}: row {i + 1}: tomogram {name!r} is not in the given tomogram names")
        extra = {"tomo_name": name} if name is not None else {}
        phi, the, psi = angles[i] if angles is not None else (None, None, None)
        objl.append(
            new_object(
                int(labels[i]),
                *coords[i],
                tomo_idx=order.index(name) if name is not None else 0,
                obj_id=i,
                phi=phi,
                the=the,
                psi=psi,
                **extra,
            )
        )
    return objl


def _numeric_columns(table: pd.DataFrame, columns, path: Path) -> np.ndarray:
    """The columns as a float array; a clear error naming the first non-numeric or non-finite cell."""
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = table[columns[col]].iloc[row]
        raise InputError(f"{path}: row {row + 1}: {columns[col]} must be a finite number, got {str(raw)[:40]!r}")
    return values


def _class_numbers(table: pd.DataFrame, path: Path) -> np.ndarray:
    if "rlnClassNumber" not in table:
        return np.ones(len(table), int)
    values = _numeric_columns(table, ["rlnClassNumber"], path)[:, 0]
    frac = np.flatnonzero((values != np.round(values)) | (np.abs(values) > 2**31 - 1))
    if len(frac):
        raise InputError(f"{path}: row {frac[0] + 1}: rlnClassNumber must be an integer, got {values[frac[0]]}")
    return values.astype(int)


def _coordinates_voxels(table: pd.DataFrame, path: Path, tomogram_size, pixel_size) -> np.ndarray:
    if set(_PIXEL_COLS) <= set(table):
        return _numeric_columns(table, _PIXEL_COLS, path)
    if set(_CENTRED_COLS) <= set(table):
        if tomogram_size is None or not pixel_size:
            raise InputError(
                f"{path}: RELION 5 centred coordinates (Å) need the tomogram size and pixel size "
                f"(tomogram_size=(x, y, z), pixel_size=...; CLI: --tomogram-size, --voxel-size)"
            )
        centre = np.asarray(tomogram_size, float) / 2.0
        return _numeric_columns(table, _CENTRED_COLS, path) / float(pixel_size) + centre
    raise InputError(f"{path}: no coordinate columns (rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst)")


def _tomo_names(table: pd.DataFrame) -> list:
    for col in _TOMO_COLS:
        if col in table:
            return [str(v) for v in table[col]]
    return [None] * len(table)


def _angles_zxz(table: pd.DataFrame, path: Path) -> np.ndarray | None:
    present = [c for c in _ANGLE_COLS if c in table]
    if not present:
        return None
    if len(present) != len(_ANGLE_COLS):
        raise InputError(f"{path}: angles rlnAngleRot/Tilt/Psi go together; found only {', '.join(present)}")
    from ..geometry import relion_to_deepfinder_angles

    return relion_to_deepfinder_angles(_numeric_columns(table, _ANGLE_COLS, path))


def write_star(
    objl: Objl,
    path: str | os.PathLike,
    tomo_names: Sequence[str] | None = None,
    relion5: bool = False,
    tomogram_size: Sequence[int] | None = None,
    pixel_size: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an object list as a RELION particles STAR file, atomically.

    RELION 3/4 pixel coordinates by default; ``relion5=True`` writes centred Å coordinates (needs
    ``tomogram_size`` and ``pixel_size``). ``label`` becomes ``rlnClassNumber``; the tomogram name is the
    object's ``tomo_name``, else ``tomo_names[tomo_idx]``, else ``tomo<idx>``.
    """
    if len(objl) == 0:
        raise InputError(f"{path}: refusing to write an empty particle list")
    xyz = np.array([[o["x"], o["y"], o["z"]] for o in objl], float)
    table: dict[str, Any] = {}
    table["rlnTomoName"] = [_tomo_name(o, tomo_names) for o in objl]
    if relion5:
        if tomogram_size is None or not pixel_size:
            raise InputError(f"{path}: RELION 5 output needs tomogram_size and pixel_size")
        centred = (xyz - np.asarray(tomogram_size, float) / 2.0) * float(pixel_size)
        for col, values in zip(_CENTRED_COLS, centred.T):
            table[col] = values
    else:
        for col, values in zip(_PIXEL_COLS, xyz.T):
            table[col] = values
    if all(o.get("phi") is not None for o in objl):
        from ..geometry import deepfinder_to_relion_angles

        zxz = np.array([[o["phi"], o["the"], o["psi"]] for o in objl], float)
        for col, values in zip(_ANGLE_COLS, deepfinder_to_relion_angles(zxz).T):
            table[col] = values
    table["rlnClassNumber"] = [int(o["label"]) for o in objl]
    df = pd.DataFrame(table)
    with atomic_path(path, overwrite) as tmp:
        starfile.write({"particles": df}, tmp, overwrite=True)
    return Path(path)


def _tomo_name(obj: dict, tomo_names) -> str:
    if obj.get("tomo_name"):
        return str(obj["tomo_name"])
    idx = obj.get("tomo_idx") or 0
    if tomo_names is not None:
        return str(tomo_names[idx])
    return f"tomo{idx}"
