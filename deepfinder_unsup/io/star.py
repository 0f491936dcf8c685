"""RELION STAR particle files <-> DeepFinder object lists (via the ``starfile`` package).

RELION 3/4 write pixel coordinates ``rlnCoordinateX/Y/Z``; RELION 5 writes coordinates in Å relative to the
tomogram centre, ``rlnCenteredCoordinateX/Y/ZAngst``: ``x_px = x_A / pixel_size + size_x / 2``, which needs the
tomogram size (voxels, x y z) and pixel size. Angles: RELION's ZYZ (rot, tilt, psi) are converted to and from
DeepFinder's ZXZ (phi, the, psi) through rotation matrices (see ``simulate.geometry``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

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


def read_star(path: str | os.PathLike, tomogram_size: Sequence[int] | None = None,
              pixel_size: float | None = None, tomo_names: Sequence[str] | None = None) -> Objl:
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
    angles = _angles_zxz(table)
    labels = table["rlnClassNumber"].to_numpy() if "rlnClassNumber" in table else np.ones(len(table), int)
    objl: Objl = []
    for i in range(len(table)):
        name = names[i]
        if name is not None and name not in order:
            raise InputError(f"{path}: row {i + 1}: tomogram {name!r} is not in the given tomogram names")
        extra = {"tomo_name": name} if name is not None else {}
        phi, the, psi = angles[i] if angles is not None else (None, None, None)
        objl.append(new_object(int(labels[i]), *coords[i], tomo_idx=order.index(name) if name is not None else 0,
                               obj_id=i, phi=phi, the=the, psi=psi, **extra))
    return objl


def _coordinates_voxels(table: pd.DataFrame, path: Path, tomogram_size, pixel_size) -> np.ndarray:
    if set(_PIXEL_COLS) <= set(table):
        return table[list(_PIXEL_COLS)].to_numpy(float)
    if set(_CENTRED_COLS) <= set(table):
        if tomogram_size is None or not pixel_size:
            raise InputError(f"{path}: RELION 5 centred coordinates (Å) need the tomogram size and pixel size "
                             f"(tomogram_size=(x, y, z), pixel_size=...; CLI: --tomogram-size, --voxel-size)")
        centre = np.asarray(tomogram_size, float) / 2.0
        return table[list(_CENTRED_COLS)].to_numpy(float) / float(pixel_size) + centre
    raise InputError(f"{path}: no coordinate columns (rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst)")


def _tomo_names(table: pd.DataFrame) -> list:
    for col in _TOMO_COLS:
        if col in table:
            return [str(v) for v in table[col]]
    return [None] * len(table)


def _angles_zxz(table: pd.DataFrame) -> np.ndarray | None:
    if not set(_ANGLE_COLS) <= set(table):
        return None
    from ..simulate.geometry import relion_to_deepfinder_angles
    return relion_to_deepfinder_angles(table[list(_ANGLE_COLS)].to_numpy(float))


def write_star(objl: Objl, path: str | os.PathLike, tomo_names: Sequence[str] | None = None,
               relion5: bool = False, tomogram_size: Sequence[int] | None = None,
               pixel_size: float | None = None, overwrite: bool = False) -> Path:
    """Write an object list as a RELION particles STAR file, atomically.

    RELION 3/4 pixel coordinates by default; ``relion5=True`` writes centred Å coordinates (needs
    ``tomogram_size`` and ``pixel_size``). ``label`` becomes ``rlnClassNumber``; the tomogram name is the
    object's ``tomo_name``, else ``tomo_names[tomo_idx]``, else ``tomo<idx>``.
    """
    if len(objl) == 0:
        raise InputError(f"{path}: refusing to write an empty particle list")
    xyz = np.array([[o["x"], o["y"], o["z"]] for o in objl], float)
    table = {}
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
        from ..simulate.geometry import deepfinder_to_relion_angles
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
