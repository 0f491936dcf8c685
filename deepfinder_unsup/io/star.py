"""RELION STAR particle files <-> DeepFinder object lists (via the ``starfile`` package), following RELION's own
conventions (src/jaz/tomography/particle_set.cpp: ``ParticleSet::getPosition`` and ``getMatrix3x3``):

- RELION 3 (no ``rlnTomoTiltSeriesPixelSize`` in an optics table): ``rlnCoordinateX/Y/Z`` are tomogram voxels;
  ``rlnOriginX/Y/Z`` (pixels) or ``rlnOriginX/Y/ZAngst`` are subtracted.
- RELION 4: ``rlnCoordinateX/Y/Z`` are pixels of the unbinned tilt series (``rlnTomoTiltSeriesPixelSize`` of
  the particle's optics group): tomogram voxels = coordinate x tilt-series pixel / tomogram voxel size.
- RELION 5: ``rlnCenteredCoordinateX/Y/ZAngst`` are Å from the tomogram centre: voxels = Å / voxel size +
  size / 2, with each tomogram's size and voxel size (its MRC header, or ``tomograms.star``).
- RELION 4/5 origins: position = coordinate - A_sub (``rlnOriginX/Y/ZAngst``), A_sub the matrix of
  ``rlnTomoSubtomogramRot/Tilt/Psi`` (identity when absent); the orientation is A_sub A_particle
  (``rlnAngleRot/Tilt/Psi``). RELION's Euler matrix is the transpose of scipy's intrinsic 'ZYZ', which is
  DeepFinder's active rotation (``geometry``).

Written files carry both coordinate forms when each tomogram's size and voxel size are known (RELION 3/4 and
Warp read ``rlnCoordinateX/Y/Z``, tomogram voxels; RELION 5 reads the centred Å columns), and ``rlnTomoName``
from the particle's source tomogram.
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
_SUBTOMO_ANGLE_COLS = ("rlnTomoSubtomogramRot", "rlnTomoSubtomogramTilt", "rlnTomoSubtomogramPsi")
_ORIGIN_ANGST_COLS = ("rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst")
_ORIGIN_PIXEL_COLS = ("rlnOriginX", "rlnOriginY", "rlnOriginZ")


Geometry = dict  # tomogram name (or file stem) -> ((size x, y, z) voxels, voxel size Å)


def _tables(path: Path) -> dict:
    try:
        return starfile.read(path, always_dict=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable STAR file ({exc})") from None


def _particles_table(path: Path, data: dict | None = None) -> pd.DataFrame:
    data = _tables(path) if data is None else data
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
    geometry: Geometry | None = None,
) -> Objl:
    """Read RELION 3/4/5 particles into an object list (coordinates in tomogram voxels, x y z; see the module
    docstring for each version's conventions).

    ``geometry`` gives each tomogram's size (voxels, x y z) and voxel size (Å), keyed by rlnTomoName or file
    stem; without it ``tomogram_size`` / ``pixel_size`` apply to every tomogram. ``tomo_idx`` is the index of the
    particle's tomogram name in ``tomo_names`` (given), or in the sorted names found in the file; the name itself
    is kept under ``tomo_name``.
    """
    path = require_file(path, "STAR file")
    tables = _tables(path)
    table = _particles_table(path, tables)
    if len(table) == 0:
        raise InputError(f"{path}: the particle table is empty")
    names = _tomo_names(table)
    ts_pixel = _tilt_series_pixel_sizes(tables, table, path)
    per_row = [_tomogram_geometry(n, geometry, tomogram_size, pixel_size) for n in names]
    a_sub = _subtomogram_matrices(table, path)
    coords = _coordinates_voxels(table, path, names, ts_pixel, per_row) - _origin_voxels(table, path, a_sub, per_row)
    order = list(tomo_names) if tomo_names is not None else sorted(set(n for n in names if n is not None))
    angles = _angles_zxz(table, path, a_sub)
    labels = _class_numbers(table, path)
    objl: Objl = []
    for i in range(len(table)):
        name = names[i]
        if name is not None and name not in order:
            raise InputError(f"{path}: row {i + 1}: tomogram {name!r} is not in the given tomogram names")
        extra = {"tomo_name": name, "star_row": i} if name is not None else {"star_row": i}
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


def write_star_rows(
    source: str | os.PathLike, rows: Sequence[int], classes: Sequence[int], path: str | os.PathLike, overwrite=False
) -> Path:
    """``source``'s own STAR file with its particle table cut to ``rows`` (in that order) and ``rlnClassNumber`` set
    to ``classes``: every column and the other tables (optics, general) as they were, so the file goes back to the
    program that wrote it (RELION, Warp) in its own conventions. Atomic."""
    source = require_file(source, "STAR file")
    tables = _tables(source)
    particles = _particles_table(source, tables)
    index = np.asarray(rows, int)
    if len(index) != len(classes) or len(index) == 0:
        raise InputError(f"{path}: {len(index)} particle rows but {len(classes)} classes")
    if index.min() < 0 or index.max() >= len(particles):
        raise InputError(f"{source}: {len(particles)} particle rows; the picks name row {index.max() + 1}")
    subset = particles.iloc[index].drop(columns=["rlnClassNumber"], errors="ignore").reset_index(drop=True)
    subset["rlnClassNumber"] = np.asarray(classes, int)  # the last column, as star_rows_as_text puts it
    out = {name: subset if table is particles else table for name, table in tables.items()}
    with atomic_path(path, overwrite) as tmp:
        starfile.write(out, tmp, overwrite=True)
    return Path(path)


def star_particle_count(source: str | os.PathLike) -> int:
    """How many particle rows ``source``'s STAR file holds."""
    source = require_file(source, "STAR file")
    return len(_particles_table(source, _tables(source)))


def star_rows_as_text(source: str | os.PathLike, rows: Sequence[int]) -> tuple[str, list[str], str]:
    """``source``'s STAR file in three parts for a selection made elsewhere (the report's interactive map): the
    text before the particle rows (every table before it, the particle table's columns with ``rlnClassNumber``
    last), each of ``rows``' data line without its class (in starfile's own formatting), and the tables after it.
    ``head + "".join(line + "\t" + cluster + "\n") + tail`` is then that file cut to the selection."""
    source = require_file(source, "STAR file")
    tables = _tables(source)
    particles = _particles_table(source, tables)
    index = np.asarray(rows, int)
    if len(index) and (index.min() < 0 or index.max() >= len(particles)):
        raise InputError(f"{source}: {len(particles)} particle rows; the picks name row {index.max() + 1}")
    names = list(tables)
    at = next(i for i, name in enumerate(names) if tables[name] is particles)
    block = particles.iloc[index].drop(columns=["rlnClassNumber"], errors="ignore").reset_index(drop=True)
    before = _star_text({name: tables[name] for name in names[:at]})
    lines = _star_text({names[at]: block}).splitlines()
    columns = [i for i, line in enumerate(lines) if line.startswith("_")]
    head = "\n".join(lines[: columns[-1] + 1]) + f"\n_rlnClassNumber #{len(columns) + 1}\n"
    data = [line for line in lines[columns[-1] + 1 :] if line.strip()]
    if len(data) != len(index):
        raise InputError(f"{source}: its particle rows do not come back one per line")
    return before + head, data, _star_text({name: tables[name] for name in names[at + 1 :]})


def _star_text(tables: dict) -> str:
    """Tables as starfile writes them (its comment line dropped); empty for no table."""
    if not tables:
        return ""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.star"
        starfile.write(tables, path, overwrite=True)
        text = path.read_text()
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# Created by"))


def star_tomogram_names(path: str | os.PathLike) -> list[str]:
    """The distinct tomogram names (rlnTomoName or rlnMicrographName) of a particles STAR file, in file order."""
    path = require_file(path, "STAR file")
    names = _tomo_names(_particles_table(path))
    return list(dict.fromkeys(n for n in names if n is not None))


TOMOGRAM_SUFFIXES = (".tomostar", ".mrc", ".rec", ".st", ".mrcs", ".map")


def _name_forms(name: str) -> list[str]:
    """A tomogram name and its forms without file suffixes: 'TS_01.mrc.tomostar' -> itself, 'TS_01.mrc', 'TS_01'."""
    forms = [Path(str(name)).name]
    while True:
        last = forms[-1]
        suffix = next((s for s in TOMOGRAM_SUFFIXES if last.endswith(s) and len(last) > len(s)), None)
        if suffix is None:
            return forms
        forms.append(last[: -len(suffix)])


def match_tomogram(name: str, files: Sequence[str]) -> int | None:
    """Index of the tomogram file a STAR tomogram name refers to: one of the name's forms (file suffixes aside) is
    the file's name without suffixes, or that followed by '_' (Warp's 'TS_01.mrc_8.00Apx.mrc'); None when no file
    or several files match."""
    forms = _name_forms(name)
    bases = [_name_forms(f)[-1] for f in files]
    exact = [i for i, b in enumerate(bases) if b in forms]
    if exact:
        return exact[0] if len(exact) == 1 else None
    prefixed = [i for i, b in enumerate(bases) if any(b.startswith(f + "_") for f in forms)]
    return prefixed[0] if len(prefixed) == 1 else None


def _tomogram_geometry(name, geometry: Geometry | None, tomogram_size, pixel_size) -> tuple:
    """((size x y z) or None, voxel size or None) of the tomogram a particle belongs to."""
    if geometry:
        for key in (name, Path(str(name)).stem):
            if key in geometry:
                size, vs = geometry[key]
                return (tuple(float(v) for v in size), float(vs))
    return (tuple(float(v) for v in tomogram_size) if tomogram_size is not None else None, pixel_size)


def _tilt_series_pixel_sizes(tables: dict, table: pd.DataFrame, path: Path) -> np.ndarray | None:
    """Per particle, its optics group's ``rlnTomoTiltSeriesPixelSize`` (RELION 4/5), or None (RELION 3)."""
    optics = tables.get("optics")
    if not isinstance(optics, pd.DataFrame) or "rlnTomoTiltSeriesPixelSize" not in optics:
        return None
    sizes = _numeric_columns(optics, ["rlnTomoTiltSeriesPixelSize"], path)[:, 0]
    if "rlnOpticsGroup" not in table or "rlnOpticsGroup" not in optics:
        return np.full(len(table), sizes[0])
    groups = dict(zip(pd.to_numeric(optics["rlnOpticsGroup"], errors="coerce"), sizes))
    wanted = _numeric_columns(table, ["rlnOpticsGroup"], path)[:, 0]
    missing = [g for g in wanted if g not in groups]
    if missing:
        raise InputError(f"{path}: optics group {missing[0]:g} of a particle is not in the optics table")
    return np.array([groups[g] for g in wanted])


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


def _coordinates_voxels(table: pd.DataFrame, path: Path, names, ts_pixel, per_row) -> np.ndarray:
    """Particle coordinates in tomogram voxels (x, y, z), before the origin shifts."""
    if set(_CENTRED_COLS) <= set(table):
        centred = _numeric_columns(table, _CENTRED_COLS, path)
        out = np.empty_like(centred)
        for i, (size, vs) in enumerate(per_row):
            if size is None or not vs:
                raise InputError(
                    f"{path}: RELION 5 centred coordinates (Å) need the size and voxel size of tomogram "
                    f"{names[i]!r} (its MRC file via --tomograms, or tomogram_size=(x, y, z), pixel_size=...; "
                    f"CLI: --tomogram-size, --voxel-size)"
                )
            out[i] = centred[i] / vs + np.asarray(size) / 2.0
        return out
    if set(_PIXEL_COLS) <= set(table):
        pixels = _numeric_columns(table, _PIXEL_COLS, path)
        if ts_pixel is None:
            return pixels  # RELION 3: tomogram voxels already
        out = np.empty_like(pixels)
        for i, (_, vs) in enumerate(per_row):
            if not vs:
                raise InputError(
                    f"{path}: RELION 4 coordinates are tilt-series pixels ({ts_pixel[i]:g} Å): the voxel size of "
                    f"tomogram {names[i]!r} is needed (its MRC file via --tomograms, or --voxel-size)"
                )
            out[i] = pixels[i] * ts_pixel[i] / vs
        return out
    raise InputError(f"{path}: no coordinate columns (rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst)")


def relion_matrices(angles: np.ndarray) -> np.ndarray:
    """RELION's ``Euler_angles2matrix`` of (rot, tilt, psi) rows: the transpose of scipy's intrinsic ZYZ."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("ZYZ", np.asarray(angles, float).reshape(-1, 3), degrees=True).inv().as_matrix()


def _subtomogram_matrices(table: pd.DataFrame, path: Path) -> np.ndarray | None:
    """A_sub of every particle (``rlnTomoSubtomogramRot/Tilt/Psi``), or None when absent (identity)."""
    present = [c for c in _SUBTOMO_ANGLE_COLS if c in table]
    if not present:
        return None
    if len(present) != 3:
        raise InputError(f"{path}: {', '.join(_SUBTOMO_ANGLE_COLS)} go together; found only {', '.join(present)}")
    return relion_matrices(_numeric_columns(table, _SUBTOMO_ANGLE_COLS, path))


def _origin_voxels(table: pd.DataFrame, path: Path, a_sub, per_row) -> np.ndarray:
    """The origin shifts to subtract, in tomogram voxels: A_sub (rlnOriginX/Y/ZAngst) / voxel size, or RELION
    3.0's rlnOriginX/Y/Z (voxels)."""
    if set(_ORIGIN_ANGST_COLS) <= set(table):
        origin = _numeric_columns(table, _ORIGIN_ANGST_COLS, path)
        if a_sub is not None:
            origin = np.einsum("nij,nj->ni", a_sub, origin)
        out = np.zeros_like(origin)
        for i, (_, vs) in enumerate(per_row):
            if origin[i].any():
                if not vs:
                    raise InputError(f"{path}: rlnOriginX/Y/ZAngst need the tomogram voxel size (--voxel-size)")
                out[i] = origin[i] / vs
        return out
    if set(_ORIGIN_PIXEL_COLS) <= set(table):
        return _numeric_columns(table, _ORIGIN_PIXEL_COLS, path)
    return np.zeros((len(table), 3))


def _tomo_names(table: pd.DataFrame) -> list:
    for col in _TOMO_COLS:
        if col in table:
            return [str(v) for v in table[col]]
    return [None] * len(table)


def _angles_zxz(table: pd.DataFrame, path: Path, a_sub: np.ndarray | None = None) -> np.ndarray | None:
    """DeepFinder (phi, the, psi) of A_sub A_particle per particle (None without any angles)."""
    present = [c for c in _ANGLE_COLS if c in table]
    if not present and a_sub is None:
        return None
    if present and len(present) != len(_ANGLE_COLS):
        raise InputError(f"{path}: angles rlnAngleRot/Tilt/Psi go together; found only {', '.join(present)}")
    from scipy.spatial.transform import Rotation

    from ..geometry import deepfinder_angles

    part = relion_matrices(_numeric_columns(table, _ANGLE_COLS, path)) if present else np.eye(3)[None]
    total = part if a_sub is None else np.einsum("nij,njk->nik", a_sub, part)
    return deepfinder_angles(Rotation.from_matrix(total))


def write_star(
    objl: Objl,
    path: str | os.PathLike,
    tomo_names: Sequence[str] | None = None,
    relion5: bool = False,
    tomogram_size: Sequence[int] | None = None,
    pixel_size: float | None = None,
    overwrite: bool = False,
    geometry: Geometry | None = None,
) -> Path:
    """Write an object list as a RELION particles STAR file, atomically.

    ``rlnCoordinateX/Y/Z`` in tomogram voxels (RELION 3, Warp), plus RELION 5's centred Å coordinates when every
    particle's tomogram size and voxel size are known (``geometry``, keyed by tomogram name, or ``relion5=True``
    with one ``tomogram_size`` and ``pixel_size`` for all). ``label`` becomes ``rlnClassNumber``; the tomogram
    name is the object's ``tomo_name``, else its ``source`` file's stem, else ``tomo_names[tomo_idx]``, else
    ``tomo<idx>``.
    """
    if len(objl) == 0:
        raise InputError(f"{path}: refusing to write an empty particle list")
    xyz = np.array([[o["x"], o["y"], o["z"]] for o in objl], float)
    table: dict[str, Any] = {}
    table["rlnTomoName"] = [_tomo_name(o, tomo_names) for o in objl]
    for col, values in zip(_PIXEL_COLS, xyz.T):
        table[col] = values
    if relion5 and (tomogram_size is None or not pixel_size):
        raise InputError(f"{path}: RELION 5 output needs tomogram_size and pixel_size")
    per_row = [_tomogram_geometry(n, geometry, tomogram_size, pixel_size) for n in table["rlnTomoName"]]
    if all(size is not None and vs for size, vs in per_row):
        centred = np.array([(p - np.asarray(size) / 2.0) * vs for p, (size, vs) in zip(xyz, per_row)])
        for col, values in zip(_CENTRED_COLS, centred.T):
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
    if obj.get("source") and not str(obj["source"]).endswith(".h5"):
        return Path(str(obj["source"])).stem
    idx = obj.get("tomo_idx") or 0
    if tomo_names is not None:
        return str(tomo_names[idx])
    return f"tomo{idx}"


def read_tomograms_star(path: str | os.PathLike) -> Geometry:
    """RELION 4/5 ``tomograms.star``: {rlnTomoName: ((size x, y, z) in tomogram voxels, voxel size Å)}, from
    ``rlnTomoSizeX/Y/Z`` (unbinned tilt-series pixels), ``rlnTomoTiltSeriesPixelSize`` and
    ``rlnTomoTomogramBinning`` (1 when absent)."""
    path = require_file(path, "tomograms STAR file")
    tables = _tables(path)
    table = next(
        (t for t in tables.values() if isinstance(t, pd.DataFrame) and "rlnTomoName" in t and "rlnTomoSizeX" in t),
        None,
    )
    if table is None:
        raise InputError(f"{path}: no table with rlnTomoName and rlnTomoSizeX/Y/Z (a RELION tomograms.star)")
    sizes = _numeric_columns(table, ["rlnTomoSizeX", "rlnTomoSizeY", "rlnTomoSizeZ"], path)
    pixel = _numeric_columns(table, ["rlnTomoTiltSeriesPixelSize"], path)[:, 0]
    binning = (
        _numeric_columns(table, ["rlnTomoTomogramBinning"], path)[:, 0]
        if "rlnTomoTomogramBinning" in table
        else np.ones(len(table))
    )
    return {
        str(name): (tuple(sizes[i] / binning[i]), float(pixel[i] * binning[i]))
        for i, name in enumerate(table["rlnTomoName"])
    }
