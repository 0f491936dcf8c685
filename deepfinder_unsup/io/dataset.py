"""The package's HDF5 files: sub-tomogram data sets and embeddings, each with its object list and provenance.

Layout (both files): attrs ``format`` ("deepfinder-unsup dataset" | "deepfinder-unsup embeddings"),
``format_version``, ``voxel_size`` (Å), ``box_size``, ``created`` (ISO time), ``command``, ``package_version``,
``class_names`` (JSON: {label: name}); dataset ``objl`` (JSON text, DeepFinder's list of dicts plus ``source``
per row). Data set files hold ``subtomograms`` (N, B, B, B) float32; embedding files ``embeddings`` (N, D).
No pickle anywhere: everything is readable with h5py and json alone.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._version import __version__
from .files import InputError, atomic_path, require_file
from .objl import Objl

INCOMPLETE_ATTR = "incomplete"  # set while a resumable writer is still filling the file
DATASET_FORMAT = "deepfinder-unsup dataset"
EMBEDDINGS_FORMAT = "deepfinder-unsup embeddings"


def provenance(command: str | None = None) -> dict[str, str]:
    """What made a file: time, command line, package version."""
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
        "package_version": __version__,
    }


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _write_common(
    h5: h5py.File,
    fmt: str,
    objl: Objl,
    voxel_size: float,
    box_size: int | None,
    class_names: dict | None,
    extra_attrs: dict | None,
) -> None:
    h5.attrs["format"] = fmt
    h5.attrs["format_version"] = 1
    h5.attrs["voxel_size"] = float(voxel_size)
    if box_size is not None:
        h5.attrs["box_size"] = int(box_size)
    h5.attrs["class_names"] = json.dumps({str(k): v for k, v in (class_names or {}).items()})
    for key, value in {**provenance(), **(extra_attrs or {})}.items():
        h5.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value, default=_json_default)
    h5.create_dataset("objl", data=json.dumps(objl, default=_json_default))


def _read_common(h5: h5py.File, path: Path, fmt: str) -> tuple[Objl, dict]:
    if h5.attrs.get(INCOMPLETE_ATTR):
        raise InputError(
            f"{path}: an incomplete file (the run that wrote it was interrupted); finish it with --resume or delete it"
        )
    if h5.attrs.get("format") != fmt:
        raise InputError(f"{path}: not a {fmt} file (format attribute is {h5.attrs.get('format')!r})")
    try:
        objl = json.loads(h5["objl"][()])
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h5.attrs.items()}
        attrs["class_names"] = {int(k): v for k, v in json.loads(attrs.get("class_names", "{}")).items()}
        voxel_size = float(attrs.get("voxel_size", "nan"))
    except (KeyError, ValueError, TypeError, OSError, AttributeError) as exc:
        raise InputError(f"{path}: a damaged {fmt} file ({type(exc).__name__}: {exc})") from None
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise InputError(f"{path}: voxel_size attribute {attrs.get('voxel_size')!r} is not a positive number")
    _check_objl_records(objl, path)
    return objl, attrs


def _check_objl_records(objl, path: Path) -> None:
    """The stored object list must be DeepFinder's list of dicts with numeric coordinates."""
    if not isinstance(objl, list):
        raise InputError(f"{path}: the stored object list is not a list")
    for i, obj in enumerate(objl):
        if not isinstance(obj, dict) or any(
            not isinstance(obj.get(k), (int, float)) or isinstance(obj.get(k), bool) for k in ("x", "y", "z")
        ):
            raise InputError(f"{path}: object {i} of the stored object list lacks numeric x, y, z")


@contextlib.contextmanager
def _open_h5(path: Path) -> Iterator[h5py.File]:
    """An HDF5 file for reading; any low-level failure while reading it becomes one InputError naming it."""
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with h5:
            yield h5
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: a damaged HDF5 file ({type(exc).__name__}: {exc})") from None


@dataclass
class SubtomoDataset:
    """Sub-tomograms (N, B, B, B) with their object list, voxel size (Å) and file attributes."""

    subtomograms: np.ndarray
    objl: Objl
    voxel_size: float
    attrs: dict = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return np.array([o["label"] for o in self.objl], dtype=int)

    @property
    def class_names(self) -> dict[int, str]:
        return self.attrs.get("class_names", {})


def write_dataset(
    path: str | os.PathLike,
    subtomograms: np.ndarray,
    objl: Objl,
    voxel_size: float,
    class_names: dict | None = None,
    extra_attrs: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write sub-tomograms and their object list to a data set file, atomically."""
    subtomograms = np.asarray(subtomograms, dtype=np.float32)
    if subtomograms.ndim != 4 or len(set(subtomograms.shape[1:])) != 1:
        raise InputError(f"{path}: sub-tomograms must have shape (N, B, B, B), got {subtomograms.shape}")
    if len(objl) != len(subtomograms):
        raise InputError(f"{path}: {len(subtomograms)} sub-tomograms but {len(objl)} objects")
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        _write_common(h5, DATASET_FORMAT, objl, voxel_size, subtomograms.shape[1], class_names, extra_attrs)
        h5.create_dataset(
            "subtomograms", data=subtomograms, chunks=(1,) + subtomograms.shape[1:] if len(subtomograms) else None
        )
    return Path(path)


def read_dataset(path: str | os.PathLike) -> SubtomoDataset:
    """Read a data set file written by :func:`write_dataset` (or ``deepfinder-unsup simulate``)."""
    path = require_file(path, "data set file")
    with _open_h5(path) as h5:
        objl, attrs = _read_common(h5, path, DATASET_FORMAT)
        try:
            data = h5["subtomograms"][()]
        except (KeyError, OSError) as exc:
            raise InputError(f"{path}: the sub-tomograms cannot be read ({exc})") from None
    return SubtomoDataset(data, objl, float(attrs["voxel_size"]), attrs)


def write_embeddings(
    path: str | os.PathLike,
    embeddings: np.ndarray,
    objl: Objl,
    voxel_size: float,
    box_size: int,
    class_names: dict | None = None,
    extra_attrs: dict | None = None,
    slices: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Write (N, D) embeddings with the object list of the embedded particles, atomically.

    ``slices`` (N, 2, B, B): central xy and xz slices of each sub-tomogram (float16), for report galleries.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(objl):
        raise InputError(f"{path}: embeddings {embeddings.shape} do not match {len(objl)} objects")
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        _write_common(h5, EMBEDDINGS_FORMAT, objl, voxel_size, box_size, class_names, extra_attrs)
        h5.create_dataset("embeddings", data=embeddings)
        if slices is not None:
            h5.create_dataset("slices", data=np.asarray(slices, np.float16), compression="gzip")
    return Path(path)


def read_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, Objl, dict[str, Any]]:
    """(embeddings (N, D), object list, attributes) of an embeddings file."""
    path = require_file(path, "embeddings file")
    with _open_h5(path) as h5:
        objl, attrs = _read_common(h5, path, EMBEDDINGS_FORMAT)
        data = h5.get("embeddings")
        if not isinstance(data, h5py.Dataset) or data.ndim != 2 or data.dtype.kind != "f":
            raise InputError(f"{path}: no (N, D) float 'embeddings' dataset")
        try:
            emb = data[()]
        except OSError as exc:
            raise InputError(f"{path}: the embeddings cannot be read ({exc})") from None
    if len(emb) != len(objl):
        raise InputError(f"{path}: {len(emb)} embeddings but {len(objl)} objects")
    return emb, objl, attrs


def read_embedding_slices(path: str | os.PathLike, indices=None) -> np.ndarray | None:
    """The central slices (N, 2, B, B) stored in an embeddings file (only rows ``indices`` if given), or None."""
    path = require_file(path, "embeddings file")
    with _open_h5(path) as h5:
        if "slices" not in h5:
            return None
        if indices is None:
            return h5["slices"][()].astype(np.float32)
        unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        ds = h5["slices"]
        rows = ds[unique] if len(unique) else np.zeros((0,) + ds.shape[1:], ds.dtype)  # h5py: increasing indices
        return np.asarray(rows, np.float32)[inverse]
