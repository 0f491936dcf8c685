"""Labelled data sets from the simulator: deterministic per seed, parallel over cores; and a Keras source
of class-balanced batches simulated on the fly."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..io.dataset import write_dataset
from ..io.objl import Objl, new_object
from ..log import progress as progress_bar
from .config import SimConfig
from .procedural import ProceduralStructure, procedural_molecule
from .scene import StructureLibrary, simulate_subtomogram
from .structures import Structure, made_by_code

NEGATIVE_NAME = "negative"


def class_names_of(structures: list[Structure], config: SimConfig) -> dict[int, str]:
    """{label: name}: 0 is the negative class (when enabled), structures are 1..K in the given order."""
    names = {i + 1: s.name for i, s in enumerate(structures)}
    if config.negative_class:
        names = {0: NEGATIVE_NAME, **names}
    return names


BINDING_CODES = {"free": 0, "surface": 1, "transmembrane": 2}  # model.classifier.BINDING_STATES' order


def binding_states_of(structures: list[Structure], config: SimConfig) -> dict[int, int]:
    """{label: binding code} of :func:`class_names_of`'s classes, as the scene draws them: 0 free (and the
    negatives), 1 on a membrane surface (``NAME@membrane`` or a name in ``config.membrane_bound``), 2
    transmembrane."""
    states = {0: 0} if config.negative_class else {}
    for i, s in enumerate(structures):
        states[i + 1] = BINDING_CODES["surface" if s.name in config.membrane_bound else s.binding]
    return states


_WORKER: dict = {}


def _init_worker(structures, config):
    _WORKER["library"] = StructureLibrary(structures)
    _WORKER["config"] = config


def _simulate_task(task):
    index, label, seed_seq = task
    rng = np.random.default_rng(seed_seq)
    vol, info = simulate_subtomogram(_WORKER["library"], label, _WORKER["config"], rng)
    return index, vol, info


DASK_CHUNK = 32  # sub-tomograms per Dask task
_DASK_LIBRARIES: dict = {}


def _simulate_chunk_on_worker(token: str, structures, config, tasks):
    """A Dask task: simulate a chunk; each worker builds the structure library once per run (``token``)."""
    if token not in _DASK_LIBRARIES:
        _DASK_LIBRARIES.clear()
        _DASK_LIBRARIES[token] = StructureLibrary(structures)
    library = _DASK_LIBRARIES[token]
    out = []
    for index, label, seed_seq in tasks:
        vol, info = simulate_subtomogram(library, label, config, np.random.default_rng(seed_seq))
        out.append((index, vol, info))
    return out


def _simulate_on_dask(client, structures, config, tasks):
    """Yield (index, volume, info) as Dask workers finish chunks; the structures are sent once per worker."""
    import uuid

    from distributed import as_completed

    token = uuid.uuid4().hex
    [shared] = client.scatter([structures], broadcast=True)
    chunks = [tasks[i : i + DASK_CHUNK] for i in range(0, len(tasks), DASK_CHUNK)]
    futures = [client.submit(_simulate_chunk_on_worker, token, shared, config, c, pure=False) for c in chunks]
    for fut in as_completed(futures):
        yield from fut.result()
        fut.release()


def simulate_dataset(
    structures: list[Structure],
    per_class: int,
    config: SimConfig | None = None,
    seed: int = 0,
    n_workers: int | None = None,
    progress: bool = True,
    client=None,
) -> tuple[np.ndarray, Objl, dict[int, str]]:
    """``per_class`` sub-tomograms of every class (plus the negative class), shuffled.

    Deterministic for a given seed whatever ``n_workers`` or Dask ``client`` (a ``distributed.Client``: the
    samples are simulated on its workers): sample i draws from its own child seed.
    Returns (volumes (N, B, B, B), object list with ``label``, angles and the drawn parameters, class names).
    """
    config = config or SimConfig()
    names = class_names_of(structures, config)
    labels = np.repeat(np.array(sorted(names)), per_class)
    labels = np.random.default_rng(seed).permutation(labels)
    seeds = np.random.SeedSequence(seed).spawn(len(labels))
    tasks = [(i, int(lab), s) for i, (lab, s) in enumerate(zip(labels, seeds))]
    n_workers = n_workers or os.cpu_count() or 1
    out = np.zeros((len(tasks),) + (config.box_size,) * 3, np.float32)
    infos = [None] * len(tasks)
    with progress_bar(total=len(tasks), desc="simulate", unit="subtomo", enabled=progress) as bar:
        if client is not None:
            for i, vol, info in _simulate_on_dask(client, structures, config, tasks):
                out[i], infos[i] = vol, info
                bar.update()
        elif n_workers == 1:
            _init_worker(structures, config)
            for i, vol, info in map(_simulate_task, tasks):
                out[i], infos[i] = vol, info
                bar.update()
        else:
            for i, vol, info in _simulate_in_pool(structures, config, tasks, n_workers):
                out[i], infos[i] = vol, info
                bar.update()
    objl = [_object_of(i, info, names) for i, info in enumerate(infos)]
    return out, objl, names


def _simulate_in_pool(structures, config: SimConfig, tasks: list, n_workers: int) -> Iterator[tuple]:
    """(index, volume, info) of every task from a process pool. A finished pool is closed and joined (its
    workers leave on the end-of-work message): ``Pool.__exit__`` would SIGTERM them, and one such signal lost
    under load left ``simulate`` waiting forever on a live worker (session 12). Errors still terminate."""
    ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
    pool = ctx.Pool(n_workers, initializer=_init_worker, initargs=(structures, config))
    try:
        yield from pool.imap_unordered(_simulate_task, tasks, chunksize=4)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _object_of(index: int, info, names: dict[int, str]) -> dict:
    phi, the, psi = info.angles if info.angles is not None else (None, None, None)
    x, y, z = info.center_xyz
    return new_object(
        info.label,
        x,
        y,
        z,
        tomo_idx=None,
        obj_id=index,
        phi=phi,
        the=the,
        psi=psi,
        class_name=names[info.label],
        **{k: v for k, v in info.params.items()},
    )


def write_simulated_dataset(
    path: str | os.PathLike,
    structures: list[Structure],
    per_class: int,
    config: SimConfig | None = None,
    seed: int = 0,
    n_workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    client=None,
) -> Path:
    """Simulate and write a data set file (see ``io.dataset``) with the config and seed in its attributes."""
    config = config or SimConfig()
    vols, objl, names = simulate_dataset(structures, per_class, config, seed, n_workers, progress, client)
    return write_dataset(
        path,
        vols,
        objl,
        config.voxel_size,
        class_names=names,
        extra_attrs={"sim_config": config.to_dict(), "seed": seed, "per_class": per_class},
        overwrite=overwrite,
    )


def class_draw_weights(
    structures: list[Structure], class_labels: np.ndarray, map_weight: float, negative_weight: float = 1.0
) -> np.ndarray:
    """Per class label (0 the negatives, k >= 1 ``structures[k - 1]``): ``map_weight`` for a class read from a
    map or model file, ``negative_weight`` for the negatives, 1 for one made by code (:func:`made_by_code`): how
    often ``balanced_labels`` draws each (``train --map-weight``, ``--negative-weight``)."""
    from_file = {i + 1: not made_by_code(s) for i, s in enumerate(structures)}

    def weight(label: int) -> float:
        if label == 0:
            return negative_weight
        return map_weight if from_file.get(label, False) else 1.0

    return np.array([weight(int(label)) for label in class_labels])


def balanced_labels(
    class_labels: np.ndarray, n: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """``n`` labels, each drawn uniformly among the classes (DeepFinder's per-batch class balancing), or in
    proportion to ``weights`` (one per class)."""
    if weights is None:
        return np.asarray(class_labels)[rng.integers(len(class_labels), size=n)]
    weights = np.asarray(weights, np.float64)
    return np.asarray(class_labels)[rng.choice(len(class_labels), size=n, p=weights / weights.sum())]


FRESH_SEEDS = (10_000, 1_000_000)  # procedural seeds drawn once: above every class list's, below the held-out sets'
MASS_BAND_CANDIDATES = 64  # seeds tried per structure wanted before a mass band is filled with the nearest in mass


def draw_fresh_seeds(n: int, rng: np.random.Generator, mass_band: float = 0.0) -> np.ndarray:
    """``n`` procedural seeds from :data:`FRESH_SEEDS`, each structure drawn once (a repeat is one in 10^4 a batch).

    ``mass_band`` b > 0: hard negatives for the contrastive loss. The first seed is drawn as usual and the others
    among seeds whose structure's mass is within a factor exp(b) of its mass (|ln m / m_first| <= b), so a batch's
    drawn-once structures cannot be told apart by size alone (session 56: the protocol's wrong nearest neighbours
    are a median |ln ratio| 0.33 apart in mass, random pairs 0.97). Where ``MASS_BAND_CANDIDATES`` x n candidates
    hold too few inside the band (a very narrow one), the nearest in mass fill it.
    """
    if mass_band < 0:
        raise ValueError(f"the mass band is a non-negative log ratio, got {mass_band}")
    if mass_band == 0 or n < 2:
        return rng.integers(*FRESH_SEEDS, n)
    first, *candidates = rng.integers(*FRESH_SEEDS, MASS_BAND_CANDIDATES * n)
    centre = np.log(procedural_molecule(int(first)).mass_kda)
    inside: list[int] = []
    tried: list[tuple[float, int]] = []
    for seed in dict.fromkeys(int(s) for s in candidates if s != first):  # in the order drawn, each once
        distance = abs(np.log(procedural_molecule(seed).mass_kda) - centre)  # a few ms a molecule: tried lazily
        tried.append((distance, seed))
        if distance <= mass_band:
            inside.append(seed)
            if len(inside) == n - 1:
                break
    else:
        inside = [seed for _, seed in sorted(tried)[: n - 1]]
    return np.array([first, *inside], np.int64)


def simulate_fresh_pairs(
    library: StructureLibrary, n: int, config: SimConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two sub-tomograms each of ``n`` procedural structures drawn once (:func:`draw_fresh_seeds`, never a
    class): the pairs of the contrastive loss's fresh share (``train --fresh-structures``), as (a, b)."""
    box = config.box_size
    a, b = np.zeros((n, box, box, box), np.float32), np.zeros((n, box, box, box), np.float32)
    for i, seed in enumerate(draw_fresh_seeds(n, rng)):
        with library.visiting(ProceduralStructure(int(seed), config.voxel_size)) as label:
            a[i] = simulate_subtomogram(library, label, config, rng)[0]
            b[i] = simulate_subtomogram(library, label, config, rng)[0]
    return a, b
