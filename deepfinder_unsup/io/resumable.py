"""A resumable embeddings file: filled unit by unit, on disk as it goes, never read as complete before it is.

``embed`` on picks writes ``OUT.partial`` beside the final ``OUT``: one row per input pick (embedding, central
slices, the object written back, a status: to do / embedded / skipped at the border), chunked HDF5 flushed
after every unit, the ``incomplete`` attribute set so every reader refuses it. A rerun with ``--resume`` checks
that it embeds the same picks with the same model (``resume_key``) and does only the units still to do. When
none is left, ``finalize`` copies the embedded rows in pick order into the final embeddings file (atomically,
chunk by chunk: memory stays bounded) and removes the partial file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from .dataset import (
    EMBEDDINGS_FORMAT,
    INCOMPLETE_ATTR,
    _write_common,
    create_checked_dataset,
    create_h5,
    plain_attr,
    set_text_attr,
)
from .files import InputError, atomic_path

TODO, EMBEDDED, SKIPPED = 0, 1, 2
COPY_ROWS = 4096  # rows copied at a time by finalize
LOCK_WAIT_S = 60.0  # how long a unit waits for another program (h5ls, a script) to let go of the partial file


def partial_path(out: str | os.PathLike) -> Path:
    """Where the resumable file of final ``out`` lives."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


class PartialEmbeddings:
    """The ``OUT.partial`` file of one ``embed`` run (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- opening ----------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, out: str | os.PathLike, n_picks: int, dim: int, box: int, resume_key: dict, overwrite: bool = False
    ) -> PartialEmbeddings:
        """A new partial file for ``n_picks`` picks (an existing one is replaced only with ``overwrite``)."""
        path = partial_path(out)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"{path}: an interrupted run's partial file exists; continue it with --resume, or pass --overwrite"
            )
        tmp = path.with_name(path.name + ".new")
        with create_h5(tmp) as h5:
            set_text_attr(h5, "format", "deepfinder-unsup partial embeddings")
            h5.attrs[INCOMPLETE_ATTR] = True
            set_text_attr(h5, "resume_key", json.dumps(resume_key, sort_keys=True))
            rows = max(1, min(n_picks, 1024))
            create_checked_dataset(h5, "embeddings", (n_picks, dim), np.float32, rows_per_chunk=rows)
            create_checked_dataset(h5, "slices", (n_picks, 2, box, box), np.float16, rows_per_chunk=min(rows, 64))
            h5.create_dataset("rows", (n_picks,), h5py.string_dtype(), chunks=(rows,))
            create_checked_dataset(h5, "status", (n_picks,), np.int8, rows_per_chunk=rows, fillvalue=TODO)
        os.replace(tmp, path)
        return cls(path)

    @classmethod
    def resume(cls, out: str | os.PathLike, resume_key: dict) -> PartialEmbeddings:
        """The partial file of an interrupted run, checked to belong to the same picks, model and options."""
        path = partial_path(out)
        if not path.exists():
            raise InputError(f"{path}: nothing to resume (no partial file from an interrupted run)")
        try:
            with h5py.File(path, "r") as h5:
                stored = json.loads(plain_attr(h5.attrs["resume_key"]))
                h5["status"][()]  # read whole (one byte a pick): a damaged file or checksum fails here
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # h5py: RuntimeError on damaged attributes
            raise InputError(f"{path}: a damaged partial file ({exc}); delete it and run again") from None
        wanted = json.loads(json.dumps(resume_key, sort_keys=True))
        differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        if differing:
            raise InputError(
                f"{path}: was started with other {', '.join(differing)}; resume with the same inputs, "
                f"or pass --overwrite to start again"
            )
        return cls(path)

    # -- progress ---------------------------------------------------------------------------------------------
    def status(self) -> np.ndarray:
        """Per pick: TODO, EMBEDDED or SKIPPED."""
        with h5py.File(self.path, "r") as h5:
            return h5["status"][()]

    def write_unit(self, indices: np.ndarray, kept: np.ndarray, embeddings, slices, rows: list[dict]) -> None:
        """Store one finished unit: ``indices`` (increasing) of its picks, ``kept`` (bool, same length) for those
        embedded; ``embeddings`` / ``slices`` / ``rows`` for the kept ones, in order. Flushed before returning."""
        indices = np.asarray(indices)
        kept = np.asarray(kept, bool)
        if len(indices) and np.any(np.diff(indices) <= 0):
            raise ValueError("unit indices must increase")
        done = indices[kept]
        with self._open_for_writing() as h5:
            if len(done):
                h5["embeddings"][done] = np.asarray(embeddings, np.float32)
                h5["slices"][done] = np.asarray(slices, np.float16)
                h5["rows"][done] = [json.dumps(r, default=_plain) for r in rows]
            status = np.where(kept, EMBEDDED, SKIPPED).astype(np.int8)
            if len(indices):
                h5["status"][indices] = status  # last: a unit counts as done only once its data are written
            h5.flush()

    def _open_for_writing(self) -> h5py.File:
        """The file opened to write, waiting up to ``LOCK_WAIT_S`` while another process reads it: HDF5 locks
        a file a reader holds, and a user inspecting the partial file must not kill the run."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return h5py.File(self.path, "r+")
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InputError(
                        f"{self.path}: another program has held it open for {LOCK_WAIT_S:.0f} s; close it and "
                        f"continue with --resume"
                    ) from None
                time.sleep(0.05)

    # -- completion ---------------------------------------------------------------------------------------------
    def finalize(
        self,
        out: str | os.PathLike,
        voxel_size: float,
        box_size: int,
        class_names: dict | None,
        extra_attrs: dict | None,
        overwrite: bool = False,
    ) -> int:
        """Write the final embeddings file from the embedded rows (pick order); returns how many."""
        status = self.status()
        if np.any(status == TODO):
            raise InputError(f"{self.path}: {int((status == TODO).sum())} picks are still to embed; run --resume")
        kept = np.flatnonzero(status == EMBEDDED)
        with h5py.File(self.path, "r") as src:
            objl = [json.loads(r) for r in _read_rows(src["rows"], kept)]
            dim = src["embeddings"].shape[1]
            with atomic_path(out, overwrite) as tmp, create_h5(tmp) as h5:
                _write_common(h5, EMBEDDINGS_FORMAT, objl, voxel_size, box_size, class_names, extra_attrs)
                emb = create_checked_dataset(h5, "embeddings", (len(kept), dim), np.float32)
                shape = (len(kept), 2, box_size, box_size)
                sl = create_checked_dataset(h5, "slices", shape, np.float16, rows_per_chunk=64, compression="gzip")
                written = 0
                for lo, hi, rows in _blocks(kept, len(status)):
                    emb[written : written + len(rows)] = src["embeddings"][lo:hi][rows - lo]
                    sl[written : written + len(rows)] = src["slices"][lo:hi][rows - lo]
                    written += len(rows)
        self.path.unlink()
        return len(kept)


def _blocks(indices: np.ndarray, n: int):
    """(lo, hi, indices in [lo, hi)) over consecutive blocks of COPY_ROWS picks: bounded reads."""
    for lo in range(0, n, COPY_ROWS):
        hi = min(n, lo + COPY_ROWS)
        rows = indices[(indices >= lo) & (indices < hi)]
        if len(rows):
            yield lo, hi, rows


def _read_rows(ds, indices: np.ndarray) -> list[str]:
    out: list[str] = []
    for lo, hi, rows in _blocks(indices, len(ds)):
        out.extend(v.decode() if isinstance(v, bytes) else v for v in ds[lo:hi][rows - lo])
    return out


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
