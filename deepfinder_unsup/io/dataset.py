"""The package's HDF5 files: sub-tomogram data sets and embeddings, each with its object list and provenance.

Layout (both files): attrs ``format`` ("deepfinder-unsup dataset" | "deepfinder-unsup embeddings"),
``format_version``, ``voxel_size`` (Å), ``box_size``, ``created`` (ISO time), ``command``, ``package_version``,
``class_names`` (JSON: {label: name}); dataset ``objl`` (JSON, DeepFinder's list of dicts plus ``source``
per row). Data set files hold ``subtomograms`` (N, B, B, B) float32; embedding files ``embeddings`` (N, D).
No pickle anywhere: everything is readable with h5py and json alone.

Format version 2 (this writer) is built so that a damaged file is an error, never a hang or silently wrong
numbers: HDF5 1.10 object headers (their metadata carry checksums), text attributes as fixed-length UTF-8
strings in those headers (h5py reads them as bytes), ``objl`` as UTF-8 bytes (uint8) and every array chunked with
Fletcher-32 checksums. Version 1 (variable-length strings in the unchecksummed global heap, on which libhdf5 can
loop forever when they are damaged: docs/testing.md) is still read.
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
FORMAT_VERSION = 2  # what this writer writes; readers take 1 and 2 (see the module docstring)
HDF5_LIBVER = ("v110", "latest")  # object header version 2: checksummed metadata (HDF5 >= 1.10 reads the files)
CHUNK_BYTES = 1 << 20  # about this much per checksummed chunk


def create_h5(path: str | os.PathLike) -> h5py.File:
    """A new HDF5 file (replacing ``path``) whose metadata carry checksums: damage is an error on reading."""
    return h5py.File(path, "w", libver=HDF5_LIBVER)


def set_text_attr(obj: h5py.HLObject, key: str, text: str) -> None:
    """A text attribute as a fixed-length UTF-8 string: stored in the (checksummed) object header, unlike h5py's
    default variable-length strings, which live in the global heap."""
    data = text.encode("utf-8")
    obj.attrs.create(key, np.array(data, dtype=h5py.string_dtype("utf-8", max(1, len(data)))))


def plain_attr(value: Any) -> Any:
    """An attribute as a plain Python value: text of either format version as ``str``, numpy scalars unwrapped."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def create_checked_dataset(
    h5: h5py.Group, name: str, shape: tuple[int, ...], dtype, rows_per_chunk: int | None = None, **kwargs
) -> h5py.Dataset:
    """An array chunked along its first axis with a Fletcher-32 checksum per chunk (damaged data fail to read).
    Chunks hold ``rows_per_chunk`` rows, by default about ``CHUNK_BYTES``; an empty array is left plain."""
    if not shape or shape[0] == 0:
        return h5.create_dataset(name, shape, dtype, **{k: v for k, v in kwargs.items() if k != "compression"})
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = rows_per_chunk or max(1, CHUNK_BYTES // max(1, row_bytes))
    return h5.create_dataset(
        name, shape, dtype, chunks=(min(shape[0], rows),) + tuple(shape[1:]), fletcher32=True, **kwargs
    )


def write_checked_array(h5: h5py.Group, name: str, data: np.ndarray, **kwargs) -> h5py.Dataset:
    """``data`` stored as a checksummed array (:func:`create_checked_dataset`)."""
    ds = create_checked_dataset(h5, name, data.shape, data.dtype, **kwargs)
    if data.size:
        ds[...] = data
    return ds


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
    set_text_attr(h5, "format", fmt)
    h5.attrs["format_version"] = FORMAT_VERSION
    h5.attrs["voxel_size"] = float(voxel_size)
    if box_size is not None:
        h5.attrs["box_size"] = int(box_size)
    set_text_attr(h5, "class_names", json.dumps({str(k): v for k, v in (class_names or {}).items()}))
    for key, value in {**provenance(), **(extra_attrs or {})}.items():
        if isinstance(value, (int, float)):
            h5.attrs[key] = value
        else:
            set_text_attr(h5, key, value if isinstance(value, str) else json.dumps(value, default=_json_default))
    text = json.dumps(objl, default=_json_default).encode("utf-8")
    write_checked_array(h5, "objl", np.frombuffer(text, np.uint8))


def _read_objl_text(h5: h5py.File) -> str:
    """The stored object list's JSON: UTF-8 bytes (format 2) or a variable-length string (format 1)."""
    ds = h5["objl"]
    value = ds[()]
    if isinstance(value, np.ndarray) and value.dtype == np.uint8:
        return value.tobytes().decode("utf-8")
    return plain_attr(value)


def _read_common(h5: h5py.File, path: Path, fmt: str) -> tuple[Objl, dict]:
    if h5.attrs.get(INCOMPLETE_ATTR):
        raise InputError(
            f"{path}: an incomplete file (the run that wrote it was interrupted); finish it with --resume or delete it"
        )
    found = plain_attr(h5.attrs.get("format"))
    if found != fmt:
        raise InputError(f"{path}: not a {fmt} file (format attribute is {found!r})")
    version = plain_attr(h5.attrs.get("format_version", 1))
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"{path}: format_version {version!r}, newer than this deepfinder-unsup reads ({FORMAT_VERSION}); "
            f"update the package"
        )
    try:
        objl = json.loads(_read_objl_text(h5))
        attrs = {k: plain_attr(v) for k, v in h5.attrs.items()}
        if not all(isinstance(k, str) for k in attrs):
            raise ValueError(f"attribute names that are not UTF-8 text: {[k for k in attrs if not isinstance(k, str)]}")
        attrs["class_names"] = {int(k): v for k, v in json.loads(attrs.get("class_names", "{}")).items()}
        voxel_size = float(attrs.get("voxel_size", "nan"))
    except (KeyError, ValueError, TypeError, OSError, AttributeError, RuntimeError) as exc:
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
    except (OSError, KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:  # h5py: RuntimeError
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
    with atomic_path(path, overwrite) as tmp, create_h5(tmp) as h5:
        _write_common(h5, DATASET_FORMAT, objl, voxel_size, subtomograms.shape[1], class_names, extra_attrs)
        write_checked_array(h5, "subtomograms", subtomograms, rows_per_chunk=1)
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


def read_class_names(path: str | os.PathLike) -> dict[int, str]:
    """The class names ({label: name}) stored in a data set or embeddings file, without reading its arrays."""
    path = require_file(path, "data set file")
    with _open_h5(path) as h5:
        try:
            return {int(k): v for k, v in json.loads(plain_attr(h5.attrs.get("class_names", "{}"))).items()}
        except (ValueError, AttributeError) as exc:
            raise InputError(f"{path}: a damaged class_names attribute ({type(exc).__name__}: {exc})") from None


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
    with atomic_path(path, overwrite) as tmp, create_h5(tmp) as h5:
        _write_common(h5, EMBEDDINGS_FORMAT, objl, voxel_size, box_size, class_names, extra_attrs)
        write_checked_array(h5, "embeddings", embeddings)
        if slices is not None:
            write_checked_array(h5, "slices", np.asarray(slices, np.float16), rows_per_chunk=64, compression="gzip")
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
