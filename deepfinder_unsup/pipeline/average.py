"""``average``: reference-free averages of each cluster with a half-set FSC."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.dataset import read_dataset
from ..io.files import InputError, atomic_path, publish_folder
from ..io.mrc import read_mrc_voxel_size, write_mrc
from ..io.objl import read_objl
from ..log import logger
from ..volume import crop_or_pad


def check_alignment_search(rotations: int, iterations: int) -> None:
    """Refuse a search too coarse to align anything, before any work."""
    if rotations < 10 or iterations < 1:
        raise InputError(f"averaging needs at least 10 rotations and 1 iteration, got {rotations} and {iterations}")


def _refuse_star_clusters(clusters_path) -> None:
    """A STAR file of clusters (``cluster``'s ``.star``, RELION's) names tomograms, not their files: ``average``
    reads the object list written beside it, which records each particle's source tomogram."""
    path = Path(clusters_path)
    if path.suffix.lower() != ".star":
        return
    twin = path.with_name(path.name.removesuffix("_particles.star").removesuffix(".star") + ".xml")
    hint = f"give {twin}, written beside it" if twin.is_file() else "give the clusters_k{K}.xml that cluster wrote"
    raise InputError(
        f"{path}: a STAR file; average reads a DeepFinder object list, which records each particle's source "
        f"tomogram: {hint}"
    )


DEFAULT_BOX = 40  # voxels re-extracted around each particle for its average
# what a run writes besides averages.json: an earlier run's files go with --overwrite by its average_outputs.txt;
# in a folder from before that list (session 52) the files with these names are moved aside, not removed
AVERAGE_OUTPUTS = ("cluster*_average.mrc", "cluster*_half*.mrc", "fsc.csv", "figures/average_c*.png", "figures")


def average_to_folder(
    clusters_path,
    out_dir,
    *,
    dataset=None,
    clusters: Sequence[int] | None = None,
    box_size: int | None = None,
    voxel_size: float | None = None,
    tilt_range: tuple[float, float] = (-60.0, 60.0),
    max_particles: int = 300,
    rotations: int = 1000,
    iterations: int = 7,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Reference-free average of every cluster of a per-cluster object list (``cluster``'s clusters_k{K}.xml):
    ``cluster{C}_average.mrc`` and half maps, ``fsc.csv``, ``averages.json``, ``figures/average_c{C}.png``.

    The particles are re-extracted from their ``source`` tomograms (``box_size`` voxels, default 40, at
    ``voxel_size``, default the first tomogram's own) or taken row by row from ``dataset`` (the simulated data set
    that was embedded: its voxel size, its box unless ``box_size`` crops or pads it). ``rotations``:
    the global search's grid over SO(3) (the local refinement's is 4 times finer), ``iterations`` in all (the first
    3 global): finer and longer cost in proportion."""
    from ..average import MIN_PARTICLES, check_tilt_range, subtomogram_average
    from ..plot import plot_average

    check_alignment_search(rotations, iterations)
    check_tilt_range(tilt_range)
    if box_size is not None and (box_size < 4 or box_size % 4):  # the alignment bins by 2: refused before extraction
        raise InputError(f"box {box_size} must be a multiple of 4 (the alignment works on 2x binned boxes)")

    if max_particles < MIN_PARTICLES:
        raise InputError(f"max_particles {max_particles}: an average needs at least {MIN_PARTICLES} (two per half)")
    _refuse_star_clusters(clusters_path)
    objl = read_objl(clusters_path)
    if not objl:
        raise InputError(f"{clusters_path}: the object list is empty")
    labels = np.array([o["label"] for o in objl])
    wanted = _clusters_to_average(labels, clusters, clusters_path)
    vols, vs = _particles_for_averaging(objl, clusters_path, dataset, box_size, voxel_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {
        "clusters_file": str(clusters_path),
        "voxel_size": vs,
        "box_size": int(vols.shape[-1]),
        "rotations": rotations,
        "iterations": iterations,
        "clusters": {},
    }
    stage = Path(tempfile.mkdtemp(prefix=".average-", dir=out_dir))
    try:
        rows = []
        for c in wanted:
            members = np.flatnonzero(labels == c)
            if len(members) > max_particles:
                members = np.sort(np.random.default_rng(seed).choice(members, max_particles, replace=False))
            if len(members) < MIN_PARTICLES:
                logger.warning(f"cluster {c}: {len(members)} particles, too few to average (at least {MIN_PARTICLES})")
                continue
            angles = _pick_angles([objl[i] for i in members])
            t0 = time.time()
            res = subtomogram_average(
                vols[members],
                vs,
                angles=angles,
                tilt_range=tilt_range,
                iterations=iterations,
                global_iterations=min(3, iterations),
                n_rotations=rotations,
                n_fine_rotations=4 * rotations,
                seed=seed,
            )
            seconds = time.time() - t0
            write_mrc(res.average, stage / f"cluster{c}_average.mrc", vs)
            for h, half in enumerate(res.half_maps, 1):
                write_mrc(half, stage / f"cluster{c}_half{h}.mrc", vs)
            plot_average(
                res.average,
                res.fsc,
                res.frequencies,
                stage / "figures" / f"average_c{c}.png",
                f"cluster {c}: {len(members)} particles, {res.resolution:.0f} Å at FSC 0.143",
                measured=res.fsc_measured,
            )
            rows += [
                (c, i, float(f), float(v), float(m), float(n))
                for i, (f, v, m, n) in enumerate(zip(res.frequencies, res.fsc, res.fsc_measured, res.fsc_null))
            ]
            summary["clusters"][str(c)] = {
                "particles": int(len(members)),
                "of": int((labels == c).sum()),
                "resolution_A": round(res.resolution, 1),
                "seconds": round(seconds, 1),
                "started_from": "pick angles" if angles is not None else "a sphere",
                "iterations": res.history,
            }
            logger.debug(f"cluster {c}: {len(members)} particles, {res.resolution:.0f} Å, {seconds:.0f} s")
        with atomic_path(stage / "fsc.csv", True) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["cluster", "shell", "frequency_per_A", "fsc", "fsc_measured", "fsc_null"])
            writer.writerows(rows)
        with atomic_path(stage / "averages.json", True) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
        publish_folder(
            stage, out_dir, overwrite, last="averages.json", manifest="average_outputs.txt", replaces=AVERAGE_OUTPUTS
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def _clusters_to_average(labels: np.ndarray, clusters: Sequence[int] | None, clusters_path) -> list[int]:
    """The clusters asked for (default: all), each present; refused when none has enough particles to average."""
    from ..average import MIN_PARTICLES

    present = sorted(set(labels.tolist()))
    wanted = sorted(present if not clusters else clusters)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InputError(f"{clusters_path}: no cluster {missing[0]} (clusters: {present})")
    sizes = {c: int((labels == c).sum()) for c in wanted}
    if max(sizes.values()) < MIN_PARTICLES:
        raise InputError(
            f"{clusters_path}: no cluster asked has the {MIN_PARTICLES} particles an average needs "
            f"(largest: {max(sizes.values())}); average a smaller k's clusters"
        )
    return wanted


def _pick_angles(objl: list) -> np.ndarray | None:
    """(N, 3) DeepFinder angles when every pick has finite ones, else None (the average starts from a sphere)."""
    try:
        angles = np.array([[float(o["phi"]), float(o["the"]), float(o["psi"])] for o in objl])
    except (KeyError, TypeError, ValueError):
        return None
    return angles if np.isfinite(angles).all() else None


def source_tomograms(objl, where) -> list[str]:
    """The tomograms the objects were extracted from (their ``source``, in order of appearance), each present:
    averaging re-extracts the particles from them."""
    sources = [o.get("source") for o in objl]
    if any(not s for s in sources):
        raise InputError(f"{where}: objects without a source tomogram; give --dataset for clusters of a data set")
    paths = sorted(set(sources), key=sources.index)
    for p in paths:
        if not Path(p).exists():
            raise InputError(f"{where}: source tomogram {p} not found")
    return paths


def _particles_for_averaging(objl, clusters_path, dataset, box_size, voxel_size):
    """Sub-tomograms (N, B, B, B) of the objects, and their voxel size (Å)."""
    from ..extract import extract_subtomograms

    if dataset is not None:
        ds = read_dataset(dataset)
        if len(ds.subtomograms) != len(objl):
            raise InputError(
                f"{clusters_path}: {len(objl)} objects but {dataset} has {len(ds.subtomograms)} sub-tomograms; "
                f"give the data set that was embedded"
            )
        if voxel_size is not None and abs(voxel_size - ds.voxel_size) > 1e-6 * ds.voxel_size:
            raise InputError(
                f"{dataset}: its sub-tomograms are at {ds.voxel_size:g} Å; a voxel size ({voxel_size:g} Å) applies "
                f"to particles re-extracted from tomograms, not to a data set's"
            )
        if box_size is None or box_size == ds.subtomograms.shape[-1]:
            return ds.subtomograms, ds.voxel_size
        return np.stack([crop_or_pad(v, box_size) for v in ds.subtomograms]), ds.voxel_size
    box_size = box_size or DEFAULT_BOX
    paths = source_tomograms(objl, clusters_path)
    if voxel_size is None:
        from .inputs import refuse_unset_voxel_size

        refuse_unset_voxel_size(paths[0], read_mrc_voxel_size(paths[0]))
    vs = voxel_size or read_mrc_voxel_size(paths[0])
    index = {p: i for i, p in enumerate(paths)}
    picks = [{**o, "tomo_idx": index[o["source"]]} for o in objl]
    vols, _ = extract_subtomograms(paths, picks, box_size=box_size, voxel_size=vs, border="pad")
    return vols, vs
