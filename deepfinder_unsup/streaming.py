"""Embedding picks from many tomograms: in units written to disk as they finish, resumable, serially or on a
Dask cluster (``dask.distributed``).

A unit is up to ``UNIT_PICKS`` picks of one tomogram (tomograms in order of first appearance in the pick list).
Serially, one process embeds the units in turn; on Dask, each worker loads the model once and embeds whole
units, and the client stores each result as it arrives. Either way the rows land at their pick's index in
``OUT.partial`` (``io.resumable``), so the final file has the same rows in the same order, whatever finished
first. A unit that fails (an unreadable tomogram, a NaN box) is reported with its tomogram and error; the
others finish, the partial file stays, and ``--resume`` redoes only what is missing.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io.files import InputError
from .io.objl import Objl
from .io.resumable import TODO, PartialEmbeddings, partial_path
from .log import logger, progress

UNIT_PICKS = 2048  # picks per unit: the resume granularity and the Dask task size
_INDEX_KEY = "_deepfinder_unsup_pick"  # carried through extraction to know which picks were kept


@dataclass
class UnitResult:
    """What one unit produced: its pick indices, which were kept, and the kept ones' outputs."""

    indices: np.ndarray
    kept: np.ndarray
    embeddings: np.ndarray
    slices: np.ndarray
    rows: list


def plan_units(objl: Objl, max_picks: int | None = None) -> list[np.ndarray]:
    """Pick indices grouped by tomogram (first-appearance order), each group cut into chunks of ``max_picks``
    (default ``UNIT_PICKS``)."""
    max_picks = max_picks or UNIT_PICKS
    groups: dict[int, list[int]] = {}
    for i, obj in enumerate(objl):
        groups.setdefault(int(obj.get("tomo_idx") or 0), []).append(i)
    return [np.array(g[s : s + max_picks], np.int64) for g in groups.values() for s in range(0, len(g), max_picks)]


def embed_unit(
    embedder,
    tomograms: Sequence[str],
    picks: Objl,
    indices: np.ndarray,
    border: str = "pad",
    tomogram_voxel_size: float | None = None,
) -> UnitResult:
    """Embed the picks of one unit (``picks[j]`` is pick ``indices[j]`` of the whole list)."""
    import warnings

    from .embed import embed_tomograms

    tagged = []
    for index, obj in zip(indices, picks):
        obj = copy.copy(obj)
        obj[_INDEX_KEY] = int(index)
        tagged.append(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped border picks are counted by the caller, not warned per unit
        emb, kept_objl, slices = embed_tomograms(embedder, tomograms, tagged, border, tomogram_voxel_size)
    kept_idx = [obj.pop(_INDEX_KEY) for obj in kept_objl]
    return UnitResult(np.asarray(indices), np.isin(indices, kept_idx), emb, slices, kept_objl)


_WORKER_EMBEDDERS: dict = {}


def _embed_unit_task(model, precision, batch_size, tta, tomograms, picks, indices, border, tomogram_voxel_size):
    """Runs on a Dask worker: the embedder is loaded once per worker process and reused by its tasks."""
    from .embed import Embedder

    key = (str(model), precision, batch_size, tta)
    if key not in _WORKER_EMBEDDERS:
        _WORKER_EMBEDDERS[key] = Embedder(model, batch_size=batch_size, precision=precision, tta=tta).fit()
    return embed_unit(_WORKER_EMBEDDERS[key], tomograms, picks, indices, border, tomogram_voxel_size)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file (model and pick files: a resumed run must use the same ones)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_partial(out, n_picks: int, dim: int, box: int, resume_key: dict, resume: bool, overwrite: bool):
    """The partial file to fill: the interrupted run's (``resume``) or a new one."""
    if resume:
        store = PartialEmbeddings.resume(out, resume_key)
        left = int((store.status() == TODO).sum())
        logger.info(f"resuming {store.path}: {n_picks - left} of {n_picks} picks already done")
        return store
    if partial_path(out).exists() and not overwrite:
        raise FileExistsError(
            f"{partial_path(out)}: an interrupted run's partial file exists; continue it with --resume, "
            f"or pass --overwrite to start again"
        )
    return PartialEmbeddings.create(out, n_picks, dim, box, resume_key, overwrite=True)


def run_units(
    store: PartialEmbeddings,
    units: list[np.ndarray],
    objl: Objl,
    tomograms: Sequence[str],
    embedder,
    border: str,
    tomogram_voxel_size: float | None,
    client=None,
    show_progress: bool = True,
) -> list[str]:
    """Embed every unit still to do into ``store``; returns one message per failed unit (empty: all done)."""
    status = store.status()
    todo = [u for u in units if np.any(status[u] == TODO)]
    failures: list[str] = []
    n_todo = int(sum(len(u) for u in todo))

    def tomogram_of(unit):
        return tomograms[int(objl[int(unit[0])].get("tomo_idx") or 0)]

    with progress(total=n_todo, desc="embed", unit="pick", enabled=show_progress) as bar:
        if client is None:
            for unit in todo:
                try:
                    result = embed_unit(embedder, tomograms, [objl[i] for i in unit], unit, border, tomogram_voxel_size)
                except Exception as exc:  # noqa: BLE001  (reported per tomogram; the other units go on)
                    failures.append(failure_message(tomogram_of(unit), exc))
                else:
                    store.write_unit(result.indices, result.kept, result.embeddings, result.slices, result.rows)
                bar.update(len(unit))
        else:
            failures = _run_on_dask(client, store, todo, objl, tomograms, embedder, border, tomogram_voxel_size, bar)
    return failures


def _run_on_dask(client, store, todo, objl, tomograms, embedder, border, tomogram_voxel_size, bar) -> list[str]:
    from distributed import as_completed

    model = str(embedder._resolved_path())
    futures = {}
    for unit in todo:
        fut = client.submit(
            _embed_unit_task,
            model,
            embedder.precision,
            embedder.batch_size,
            embedder.tta_,
            [str(t) for t in tomograms],
            [objl[i] for i in unit],
            unit,
            border,
            tomogram_voxel_size,
            pure=False,
        )
        futures[fut] = unit
    failures = []
    for fut in as_completed(list(futures)):
        unit = futures.pop(fut)
        try:
            result = fut.result()
        except Exception as exc:  # noqa: BLE001
            failures.append(failure_message(tomograms[int(objl[int(unit[0])].get("tomo_idx") or 0)], exc))
        else:
            store.write_unit(result.indices, result.kept, result.embeddings, result.slices, result.rows)
        fut.release()
        bar.update(len(unit))
    return failures


def failure_message(tomogram, exc: Exception) -> str:
    """One line naming the tomogram (once) and what went wrong."""
    text = str(exc) if isinstance(exc, (InputError, OSError)) else f"{type(exc).__name__}: {exc}"
    return text if text.startswith(str(tomogram)) else f"{tomogram}: {text}"


def resume_key(model_path: Path, picks_path, tomograms, border, tomogram_voxel_size, n_picks, box, voxel_size) -> dict:
    """What must not change between an interrupted run and its ``--resume``."""
    return {
        "model": file_digest(model_path),
        "picks": file_digest(picks_path),
        "tomograms": [str(Path(t).resolve()) for t in tomograms],
        "border": border,
        "tomogram_voxel_size": tomogram_voxel_size,
        "n_picks": int(n_picks),
        "box_size": int(box),
        "voxel_size": float(voxel_size),
    }
