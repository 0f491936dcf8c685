"""Workflows that chain the modules, one function per CLI job (the CLI only parses and prints).

simulate -> data set folder; simulate a tomogram; picks -> embeddings file; embeddings -> clusters + report;
the demo. Outputs are checked for overwriting before any long computation starts.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .io.dataset import (
    read_class_names,
    read_dataset,
    read_embedding_slices,
    read_embeddings,
    write_dataset,
    write_embeddings,
)
from .io.files import InputError, atomic_path, check_writable, publish_folder
from .io.mrc import read_mrc_voxel_size, write_mrc
from .io.objl import new_object, read_objl, write_objl
from .io.shrec import write_shrec_locations
from .io.star import read_star, write_star
from .log import logger
from .threads import numeric_threads_on_free_cores

# -- simulate -----------------------------------------------------------------------------------------------
LIKE_BOXES = 300  # random boxes of a tomogram for ``simulate --like``


def _config_like_file(path, config, out_dir: Path, seed: int, overwrite: bool):
    """``config`` with the acquisition estimated from the boxes of ``path`` (tomogram or data set)."""
    from .simulate.like import config_like, estimate_acquisition

    boxes = like_boxes(path, config.box_size, config.voxel_size, seed)
    estimate = estimate_acquisition(boxes, seed=seed)
    matched = config_like(estimate, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "like.json", overwrite) as tmp:
        tmp.write_text(json.dumps({"source": str(path), "estimate": estimate.to_dict(), "config": matched.to_dict()}))
    logger.info(f"simulating like {path}: {estimate.to_dict()}")
    return matched


def like_boxes(path, box: int, voxel_size: float, seed: int = 0, n: int = LIKE_BOXES) -> np.ndarray:
    """Boxes to estimate an acquisition from: a data set's sub-tomograms, or ``n`` random boxes (away from the
    borders) of a tomogram, resampled to ``voxel_size``."""
    from .extract import extract_subtomograms, load_dataset_subtomograms
    from .io.mrc import read_mrc_geometry

    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        vols, _ = load_dataset_subtomograms(path, box, voxel_size)
        return vols
    size_xyz, tomo_vs = read_mrc_geometry(path)
    half = int(np.ceil(box * voxel_size / tomo_vs / 2)) + 1
    if any(s <= 2 * half for s in size_xyz):
        raise InputError(f"{path}: {size_xyz} voxels (x, y, z) is too small for {box}^3 boxes at {voxel_size} Å")
    rng = np.random.default_rng(seed)
    x, y, z = (rng.integers(half, s - half, size=n) for s in size_xyz)
    picks = [new_object(0, x=float(a), y=float(b), z=float(c)) for a, b, c in zip(x, y, z)]
    try:
        vols, _ = extract_subtomograms([path], picks, box, voxel_size)
    except InputError as exc:  # say which box: a random one, not a particle of the user's
        detail = re.sub(r"particle \d+", "a random box", str(exc).split(": ", 1)[-1], count=1)
        raise InputError(
            f"{path}: --like reads {n} random boxes of the tomogram and {detail}; give a tomogram without empty "
            "regions, or the sub-tomograms of picks (--like DATA.h5)"
        ) from None
    return vols


def simulate_to_folder(
    structures: Sequence[str],
    per_class: int,
    out_dir,
    config_path=None,
    seed: int = 0,
    workers: int | None = None,
    write_mrc_files: bool = False,
    negative: bool = True,
    overwrite: bool = False,
    scheduler: str | None = None,
    like: str | None = None,
) -> Path:
    """``out_dir/dataset.h5`` + ``objects.xml`` (class_label = class) + ``classes.csv`` (+ ``mrc/``);
    simulated on the Dask cluster at ``scheduler`` when given, else on ``workers`` local processes. ``like``:
    a tomogram (.mrc) or data set (.h5) whose missing wedge, low-pass and polarity are estimated and imposed
    (``simulate.like``; the estimate is written to ``out_dir/like.json``)."""
    from .simulate.config import SimConfig
    from .simulate.dataset import simulate_dataset
    from .simulate.structures import load_structures

    out_dir = Path(out_dir)
    for name in ("dataset.h5", "objects.xml", "classes.csv"):
        check_writable(out_dir / name, overwrite)
    config = SimConfig.from_file(config_path) if config_path else SimConfig()
    config.negative_class = config.negative_class and negative
    if like:
        config = _config_like_file(like, config, out_dir, seed, overwrite)
    structs = load_structures(structures, config.voxel_size)
    from .compute import maybe_dask

    with maybe_dask(scheduler) as client:
        vols, objl, names = simulate_dataset(structs, per_class, config, seed, workers, client=client)
    if write_mrc_files:
        for i, (vol, obj) in enumerate(zip(vols, objl)):
            path = out_dir / "mrc" / f"{i:06d}_{names[obj['label']]}.mrc"
            write_mrc(vol, path, config.voxel_size, overwrite)
            obj["mrc"] = str(path.relative_to(out_dir))
    write_dataset(
        out_dir / "dataset.h5",
        vols,
        objl,
        config.voxel_size,
        names,
        {"sim_config": config.to_dict(), "seed": seed, "per_class": per_class},
        overwrite,
    )
    write_objl(objl, out_dir / "objects.xml", overwrite)
    with atomic_path(out_dir / "classes.csv", overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class_label", "name", "count"])
        for label, name in names.items():
            writer.writerow([label, name, sum(o["label"] == label for o in objl)])
    return out_dir / "dataset.h5"


def simulate_tomogram_to_folder(
    structures: Sequence[str],
    out_dir,
    shape=(96, 256, 256),
    particles: int = 100,
    membranes: int = 1,
    config_path=None,
    seed: int = 0,
    overwrite: bool = False,
    snr: float | None = None,
) -> list[Path]:
    """``tomogram.mrc`` + ``objects.xml`` + ``particle_locations.txt`` + ``classes.csv`` in ``out_dir``."""
    from .simulate.config import SimConfig
    from .simulate.scene import StructureLibrary, simulate_tomogram
    from .simulate.structures import load_structures

    out_dir = Path(out_dir)
    paths = [out_dir / n for n in ("tomogram.mrc", "objects.xml", "particle_locations.txt", "classes.csv")]
    for p in paths:
        check_writable(p, overwrite)
    config = SimConfig.from_file(config_path) if config_path else SimConfig()
    structs = load_structures(structures, config.voxel_size)
    tomo, objl = simulate_tomogram(StructureLibrary(structs), shape, particles, membranes, config, seed, snr)
    write_mrc(tomo, paths[0], config.voxel_size, overwrite)
    write_objl(objl, paths[1], overwrite)
    write_shrec_locations([{**o, "pdb_id": o["class_name"]} for o in objl], paths[2], overwrite)
    with atomic_path(paths[3], overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class_label", "name"])
        for i, s in enumerate(structs):
            writer.writerow([i + 1, s.name])
    return paths


# -- embed --------------------------------------------------------------------------------------------------
def train_to_folder(
    out_dir,
    config,
    val_path,
    train_path=None,
    structures: Sequence[str] | None = None,
    sim_config_path=None,
    resume: bool = False,
    command: str | None = None,
) -> Path:
    """``deepfinder-unsup train``: from a data set file, or from structures simulated on the fly."""
    from .io.dataset import read_dataset
    from .train import train

    val = read_dataset(val_path)
    if structures is None:
        return train(read_dataset(train_path), val, out_dir, config, resume, command)
    from .simulate.config import SimConfig
    from .simulate.keras_source import SimulatedBatches
    from .simulate.structures import load_structures

    sim = SimConfig.from_file(sim_config_path) if sim_config_path else SimConfig()
    structs = load_structures(structures, sim.voxel_size)
    source = SimulatedBatches(
        structs,
        sim,
        batch_size=config.batch_size,
        steps_per_epoch=config.steps_per_epoch or 100,
        seed=config.seed,
        workers=config.workers,
        use_multiprocessing=config.workers > 0,
        specs=list(structures),
        map_weight=config.map_weight,
    )
    return train(None, val, out_dir, config, resume, command, simulation=source)


def embed_to_file(
    out,
    *,
    objl_path=None,
    star_path=None,
    tomograms: Sequence[str] | None = None,
    subtomograms=None,
    dataset=None,
    model=None,
    voxel_size: float | None = None,
    tomogram_size=None,
    border: str = "pad",
    batch_size: int = 64,
    precision: str = "float32",
    overwrite: bool = False,
    command: str | None = None,
    resume: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    tomograms_star=None,
    copick: dict | None = None,
    tta: bool | None = None,
) -> tuple[Path, int]:
    """Embed one input (picks + tomograms, STAR + tomograms, sub-tomogram files, or a data set file) into an
    embeddings file at the model's box and voxel size; returns (path, number of particles).

    Inputs and the output's folder are checked before the model is loaded, so bad input fails at once."""
    from .embed import Embedder, central_slices, resolve_precision
    from .extract import load_dataset_subtomograms, load_subtomogram_files

    if copick:
        return _embed_copick(
            out, copick, model, border, batch_size, precision, overwrite, resume, scheduler, workers, command, tta
        )
    if resume and not (objl_path or star_path):
        raise InputError("--resume continues an embedding of picks (--objl / --star); sub-tomogram inputs rerun whole")
    if (scheduler or workers) and not (objl_path or star_path):
        raise InputError("--scheduler / --workers distribute picks in tomograms (--objl / --star with --tomograms)")
    out = check_writable(out, overwrite)
    require_writable_folder(out.parent)
    objl = None
    if objl_path or star_path:
        if not tomograms:
            raise InputError("--objl / --star need --tomograms (the MRC files the picks were made in)")
        for t in tomograms:
            read_mrc_voxel_size(t)  # exists and has a readable MRC header
        objl = (
            read_objl(objl_path)
            if objl_path
            else read_star_picks(star_path, tomograms, voxel_size, tomogram_size, tomograms_star)
        )
        _require_picks(objl, objl_path or star_path, "embed", len(tomograms))
    elif not (subtomograms or dataset):
        raise InputError("nothing to embed: give picks (--objl / --star with --tomograms), --subtomograms or --dataset")
    precision = resolve_precision(precision)
    if objl is not None:
        return embed_picks_to_file(
            out,
            objl,
            objl_path or star_path,
            tomograms,
            model,
            border=border,
            tomogram_voxel_size=voxel_size,
            batch_size=batch_size,
            precision=precision,
            overwrite=overwrite,
            resume=resume,
            scheduler=scheduler,
            workers=workers,
            command=command,
            tta=tta,
        )
    embedder = Embedder(model, batch_size=batch_size, precision=precision, progress=True, tta=tta).fit()
    box, vs = embedder.box_size, embedder.voxel_size
    class_names = {}
    if subtomograms:
        vols, kept = load_subtomogram_files(subtomograms, box, vs, voxel_size)
    else:
        vols, kept = load_dataset_subtomograms(dataset, box, vs)
        class_names = read_class_names(dataset)
    emb, slices = embedder.transform(vols), central_slices(vols)
    source = {"subtomograms": str(subtomograms or dataset)}
    if len(kept) == 0:
        raise InputError("no particle left to embed (all crossed the tomogram border? try --border pad)")
    if not class_names:  # simulated picks carry their class name
        class_names = {int(o["label"]): str(o["class_name"]) for o in kept if o.get("class_name")}
    write_embeddings(
        out,
        emb,
        kept,
        vs,
        box,
        class_names,
        {"model": str(embedder._resolved_path()), "source": source, "command": command or "", "tta": embedder.tta_},
        slices=slices,
        overwrite=overwrite,
    )
    return out, len(kept)


def _embed_copick(
    out, copick: dict, model, border, batch_size, precision, overwrite, resume, scheduler, workers, command, tta
):
    """Picks and tomograms of a copick project (``copick``: config, object, user, session, runs, tomo_type),
    each run's tomogram at the spacing closest to the model's copied once to MRC beside the output."""
    from .embed import Embedder, resolve_precision
    from .io.copick_project import read_copick_picks

    out = check_writable(out, overwrite)
    require_writable_folder(out.parent)
    voxel = Embedder(model).voxel_size
    cache = Path(tempfile.mkdtemp(prefix=f".{out.name}.copick-", dir=out.parent))
    try:
        objl, tomograms = read_copick_picks(
            copick["config"],
            copick["object"],
            cache,
            voxel,
            copick.get("user"),
            copick.get("session"),
            copick.get("runs"),
            copick.get("tomo_type"),
        )
        return embed_picks_to_file(
            out,
            objl,
            copick["config"],
            tomograms,
            model,
            border=border,
            batch_size=batch_size,
            precision=resolve_precision(precision),
            overwrite=overwrite,
            resume=resume,
            scheduler=scheduler,
            workers=workers,
            command=command or f"copick {copick['config']}",
            tta=tta,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def embed_picks_to_file(
    out: Path,
    objl: list,
    picks_path,
    tomograms: Sequence[str],
    model=None,
    *,
    border: str = "pad",
    tomogram_voxel_size: float | None = None,
    batch_size: int = 64,
    precision: str = "float32",
    overwrite: bool = False,
    resume: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    command: str | None = None,
    tta: bool | None = None,
) -> tuple[Path, int]:
    """Embed picks in tomograms unit by unit into ``OUT.partial`` (resumable, serial or on Dask), then write
    the final embeddings file; returns (path, number embedded)."""
    from .compute import maybe_dask
    from .embed import Embedder
    from .streaming import open_partial, plan_units, resume_key, run_units

    embedder = Embedder(model, batch_size=batch_size, precision=precision, tta=tta).fit()
    box, vs = embedder.box_size, embedder.voxel_size
    model_path = embedder._resolved_path()
    key = resume_key(model_path, picks_path, tomograms, border, tomogram_voxel_size, len(objl), box, vs)
    if embedder.tta_:  # resumed with the same views (a key without it: files from before the option)
        key["tta"] = True
    dim = int(embedder.card.get("embedding_dim", 32))
    store = open_partial(out, len(objl), dim, box, key, resume, overwrite)
    units = plan_units(objl)
    try:
        with maybe_dask(scheduler, workers) as client:
            if client is not None:
                logger.info(f"embedding {len(units)} units on Dask ({client.scheduler_info().get('address', '')})")
            failures = run_units(store, units, objl, tomograms, embedder, border, tomogram_voxel_size, client)
    except KeyboardInterrupt:
        logger.warning(f"finished units are kept in {store.path}: continue with --resume")
        raise
    if failures and len(failures) == len(units) and not resume:  # nothing done: one clear error, no partial file
        store.path.unlink(missing_ok=True)
        more = f" (and {len(failures) - 1} more failed units)" if len(failures) > 1 else ""
        raise InputError(failures[0] + more)
    if failures:
        for message in failures:
            logger.error(message)
        raise InputError(
            f"{len(failures)} of {len(units)} units failed (above); the others are kept in {store.path}: "
            f"fix the input and rerun with --resume"
        )
    class_names = {int(o["label"]): str(o["class_name"]) for o in objl if o.get("class_name")}
    source = {"tomograms": [str(t) for t in tomograms], "picks": str(picks_path)}
    extra = {
        "model": str(model_path),
        "source": source,
        "command": command or "",
        "precision": precision,
        "tta": embedder.tta_,
    }
    n = store.finalize(out, vs, box, class_names, extra, overwrite)
    padded = 0
    if border == "pad":
        from .io import read_embeddings

        padded = sum(bool(o.get("border_padded")) for o in read_embeddings(out)[1])
    logger.info(
        f"{n} of {len(objl)} picks embedded"
        + (f", {padded} of them padded at the tomogram border" if padded else "")
        + (f", {len(objl) - n} skipped at the border" if n < len(objl) else "")
        + f" ({precision})"
    )
    return out, n


def require_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and check that a file can be written in it (fail before long work)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder}: output folder is not writable")


def _require_picks(objl: list, path, action: str, n_tomograms: int) -> None:
    """One clear error naming the picks file when it holds no particle or a ``tomo_idx`` beyond the tomograms
    given (checked before any work, so no partial file is left and no unit fails on it later)."""
    from .extract import check_objl

    if not objl:
        raise InputError(f"{path}: the object list is empty: no particles to {action}")
    check_objl(objl, n_tomograms, str(path))


def read_star_picks(
    star_path, tomograms: Sequence[str], voxel_size: float | None = None, tomogram_size=None, tomograms_star=None
) -> list:
    """STAR picks with ``tomo_idx`` pointing into ``tomograms``: each particle's rlnTomoName (or
    rlnMicrographName) must name one tomogram file (the same base name, file suffixes and Warp's '_8.00Apx' aside),
    unless a single tomogram is given. Each tomogram's size and voxel size come from ``tomograms_star`` (RELION's
    tomograms.star) when given, else from its MRC header (``voxel_size`` / ``tomogram_size`` override them)."""
    from .io.star import match_tomogram, read_tomograms_star, star_tomogram_names

    names = star_tomogram_names(star_path)
    if len(tomograms) == 1 and len(names) > 1:
        raise InputError(
            f"{star_path}: particles come from {len(names)} tomograms ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''}) but one --tomograms file was given; give one MRC "
            f"file per tomogram, named like its rlnTomoName"
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
        size = tuple(tomogram_size) if tomogram_size is not None else read_mrc_geometry_size(tomograms[i])
        geometry[name] = from_star.get(name, (size, vs))
    single = next(iter(geometry.values())) if len(tomograms) == 1 and geometry else (None, None)
    if len(tomograms) == 1 and not geometry:
        vs = voxel_size or read_mrc_voxel_size(tomograms[0]) or None
        single = (tuple(tomogram_size) if tomogram_size is not None else read_mrc_geometry_size(tomograms[0]), vs)
    objl = read_star(star_path, tomogram_size=single[0], pixel_size=single[1], geometry=geometry)
    for obj in objl:
        name = obj.get("tomo_name")
        obj["tomo_idx"] = index[name] if name is not None else 0
    return objl


def read_mrc_geometry_size(path) -> tuple[int, int, int]:
    """The (x, y, z) size of an MRC file, whatever its header says about the voxel size."""
    import mrcfile

    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=False) as mrc:
            return (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz))
    except Exception as exc:
        raise InputError(f"{path}: not a readable MRC file ({exc})") from None


# -- cluster ------------------------------------------------------------------------------------------------
@numeric_threads_on_free_cores()  # OpenMP / BLAS threads on the idle cores only: see threads.py
def cluster_to_folder(
    embeddings_path,
    k_spec: str,
    out_dir,
    method: str = "kmeans",
    evaluate: bool = False,
    report: bool = True,
    report_k: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    normalise: str = "l2",
    average: bool = False,
    dataset=None,
    copick=None,
    rare: bool = False,
    min_cluster_size: int | None = None,
    rare_method: str = "coassociation",
    average_rotations: int = 1000,
    average_iterations: int = 7,
) -> tuple[dict, Path | None]:
    """k sweep on an embeddings file: metrics.json, clusters_k{K}.xml/.star, clusters.csv, report.html.

    ``rare``: also clusters with no k that may be as small as ``min_cluster_size`` (default 1 % of the picks),
    by ``rare_method`` (``coassociation``: what many over-clusterings agree on; ``hdbscan``: dense regions), in
    ``clusters_rare.xml/.star`` (cluster 0: picks in no cluster), its summary in metrics.json, and a
    dendrogram of 30 over-clustered groups in the report, for structures too rare for the k sweep.

    ``normalise``: 'l2' clusters each embedding scaled to unit length, 'none' the raw embeddings. ``average``:
    also average every cluster of the report's k (``averages_k{K}/``, see ``average_to_folder``; particles from
    their source tomograms, or from ``dataset``; ``average_rotations``, ``average_iterations``: its search) and
    show the averages in the report."""
    from .cluster import (
        RARE_METHODS,
        check_clusterable,
        metrics_document,
        normalise_features,
        parse_k_range,
        sweep_k,
        write_cluster_files,
        write_metrics,
    )

    out_dir = Path(out_dir)
    ks = parse_k_range(k_spec)
    if report_k is not None and report_k not in ks:
        raise InputError(f"--report-k {report_k} is not among the k values clustered ({k_spec})")
    if rare and rare_method not in RARE_METHODS:
        raise InputError(f"unknown rare-structure method {rare_method!r}; choose from {', '.join(RARE_METHODS)}")
    if min_cluster_size is not None and min_cluster_size < 2:
        raise InputError(f"--min-cluster-size {min_cluster_size}: a cluster needs at least 2 particles")
    if average:
        _check_alignment_search(average_rotations, average_iterations)
    _refuse_existing_cluster_outputs(out_dir, ks, overwrite)
    emb, objl, attrs = read_embeddings(embeddings_path)
    truth = None
    if evaluate:
        labels = [o.get("label") for o in objl]
        if any(lab is None for lab in labels):
            raise InputError(f"{embeddings_path}: --evaluate needs a class_label for every particle")
        truth = np.array(labels, int)
        if len(np.unique(truth)) < 2:
            raise InputError(f"{embeddings_path}: --evaluate needs at least two true classes in class_label")
    check_clusterable(emb, ks, str(embeddings_path))
    emb = normalise_features(emb, normalise, str(embeddings_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    per_k, assignments = sweep_k(emb, ks, method, truth, seed, where=str(embeddings_path))
    doc = metrics_document(per_k, method, evaluate, len(emb))
    doc["embeddings"] = str(embeddings_path)
    doc["normalise"] = normalise
    rare_result = None
    if rare:
        from .cluster import rare_analysis, truth_scores

        rare_result = rare_analysis(emb, min_cluster_size, seed, rare_method)
        doc["rare"] = rare_result["summary"]
        if truth is not None:
            doc["rare"].update(truth_scores(truth, rare_result["labels"]))
    # everything is written into a hidden staging folder and moved into place at the end (metrics.json
    # last): an interrupted run leaves nothing under the final names, and a rerun starts clean
    stage = Path(tempfile.mkdtemp(prefix=".cluster-", dir=out_dir))
    try:
        write_cluster_files(objl, assignments, stage)
        extra_figures = []
        if rare_result is not None:
            _write_rare_clusters(objl, rare_result, stage)
            if report:
                from .plot import plot_dendrogram

                summary = rare_result["summary"]
                title = (
                    f"Rare structures: {RARE_METHODS[rare_method]} found {summary['n_clusters']} clusters (sizes "
                    f"{', '.join(str(n) for n in summary['sizes'].values())}; {summary['unassigned']} unassigned, "
                    f"clusters_rare.xml); the tree of 30 over-clustered groups (leaf: particles)"
                )
                tree_png = stage / "figures" / "rare_dendrogram.png"
                plot_dendrogram(rare_result["tree"], rare_result["group_sizes"], tree_png, "over-clustered groups")
                extra_figures.append((title, tree_png))
        write_metrics(doc, stage / "metrics.json")
        html = None
        k = report_k if report_k is not None else doc["selected_k"]
        average_figures = extra_figures
        if average:
            averages = average_to_folder(
                stage / f"clusters_k{k}.xml",
                stage / f"averages_k{k}",
                dataset=dataset,
                rotations=average_rotations,
                iterations=average_iterations,
                overwrite=True,
            )
            for c, row in averages["clusters"].items():
                title = f"Cluster {c} average ({row['particles']} particles, {row['resolution_A']} Å at FSC 0.143)"
                average_figures.append((title, stage / f"averages_k{k}" / "figures" / f"average_c{c}.png"))
        if report:
            from .report import make_report

            make_report(
                stage,
                emb,
                doc,
                assignments,
                truth,
                attrs.get("class_names") or None,
                _slice_reader(embeddings_path),
                k=k,
                seed=seed,
                overwrite=True,
                extra_figures=average_figures,
                padded=np.array([bool(o.get("border_padded")) for o in objl]),
                objl=objl,
            )
            html = out_dir / "report.html"
        publish_folder(stage, out_dir, overwrite, last="metrics.json")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if copick:
        from .io.copick_project import write_copick_clusters

        written = write_copick_clusters(copick, objl, assignments[k], k, overwrite)
        logger.info(f"copick: {len(written)} pick sets written (user deepfinder-unsup, sessions k{k}-cluster*)")
    return doc, html


def _slice_reader(embeddings_path):
    """A reader of the stored central slices by row, or None when the file has none (the report then shows no
    galleries: embeddings written by the API need not carry slices)."""
    if read_embedding_slices(embeddings_path, [0]) is None:
        return None
    return lambda rows: read_embedding_slices(embeddings_path, rows)


def _write_rare_clusters(objl, rare_result: dict, folder: Path) -> None:
    from .cluster import clustered_objl, source_geometry

    cl = clustered_objl(objl, rare_result["labels"])
    write_objl(cl, folder / "clusters_rare.xml")
    write_star(cl, folder / "clusters_rare.star", geometry=source_geometry(objl))


def _refuse_existing_cluster_outputs(out_dir: Path, ks, overwrite: bool) -> None:
    """Fail before any work if an output of ``cluster`` already exists (and not ``overwrite``)."""
    if overwrite or not out_dir.exists():
        return
    names = ["metrics.json", "clusters.csv", "report.html", "clusters_rare.xml", "clusters_rare.star"] + [
        f"clusters_k{k}.{e}" for k in ks for e in ("xml", "star")
    ]
    existing = [out_dir / n for n in names if (out_dir / n).exists()]
    if (out_dir / "figures").is_dir() and any((out_dir / "figures").iterdir()):
        existing.append(out_dir / "figures")
    if existing:
        raise FileExistsError(f"{existing[0]}: exists; pass --overwrite to replace the outputs in {out_dir}")


# -- demo ---------------------------------------------------------------------------------------------------
DEMO_SHAPES = ("ring", "barrel", "dumbbell", "helix_right", "corner_right", "globule")


def run_demo(
    out_dir="deepfinder_unsup_demo",
    model=None,
    seed: int = 0,
    overwrite: bool = False,
    n_particles: int = 240,
    shape=(80, 320, 320),
) -> dict:
    """Simulate a tomogram of built-in shapes, embed its particles with the (shipped) model, cluster with
    k = 2..10, score against the truth and write the report; logs what it does and the V-measure."""
    from .simulate.config import fixed_config

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir}: folder exists and is not empty; pass --overwrite or --out ELSEWHERE")
    t0 = time.time()
    tomo_dir = out_dir / "tomogram"
    logger.info(
        f"[1/3] simulating a {shape[2]}x{shape[1]}x{shape[0]} tomogram with {n_particles} particles of "
        f"{len(DEMO_SHAPES)} built-in shapes ..."
    )
    config_path = out_dir / "sim_config.json"
    config = fixed_config(snr=0.3, bfactor=200.0)  # one plain microscope: +-60 degrees, 3 µm, no CTF correction
    with atomic_path(config_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(config.to_dict(), indent=1))
    simulate_tomogram_to_folder(
        [f"builtin:{s}" for s in DEMO_SHAPES], tomo_dir, shape, n_particles, 1, config_path, seed, overwrite=True
    )
    logger.info(f"[2/3] embedding the picks of {tomo_dir / 'objects.xml'} ...")
    emb_path, n = embed_to_file(
        out_dir / "embeddings.h5",
        objl_path=tomo_dir / "objects.xml",
        tomograms=[str(tomo_dir / "tomogram.mrc")],
        model=model,
        border="pad",
        overwrite=True,
        command="deepfinder-unsup demo",
    )
    logger.info(f"[3/3] clustering {n} embeddings for k = 2..10 and writing the report ...")
    doc, html = cluster_to_folder(emb_path, "2:10", out_dir / "clusters", evaluate=True, overwrite=True, seed=seed)
    at_truth = next(r for r in doc["per_k"] if r["k"] == len(DEMO_SHAPES))
    selected = next(r for r in doc["per_k"] if r["k"] == doc["selected_k"])
    logger.info(f"V-measure at k = {len(DEMO_SHAPES)} (the true number of classes): {at_truth['v_measure']:.3f}")
    logger.info(f"selected k = {doc['selected_k']} (largest eigengap), V-measure there: {selected['v_measure']:.3f}")
    logger.info(f"report: {html}")
    logger.info(f"cluster object lists: {out_dir / 'clusters'}/clusters_k*.xml (DeepFinder) and .star (RELION)")
    logger.info(f"done in {time.time() - t0:.0f} s")
    return doc


def _check_alignment_search(rotations: int, iterations: int) -> None:
    """Refuse a search too coarse to align anything, before any work."""
    if rotations < 10 or iterations < 1:
        raise InputError(f"averaging needs at least 10 rotations and 1 iteration, got {rotations} and {iterations}")


def average_to_folder(
    clusters_path,
    out_dir,
    *,
    dataset=None,
    clusters: Sequence[int] | None = None,
    box_size: int = 40,
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

    The particles are re-extracted from their ``source`` tomograms (at ``voxel_size``, default the first
    tomogram's own) or taken row by row from ``dataset`` (the simulated data set that was embedded). ``rotations``:
    the global search's grid over SO(3) (the local refinement's is 4 times finer), ``iterations`` in all (the first
    3 global): finer and longer cost in proportion."""
    from .average import check_tilt_range, subtomogram_average
    from .plot import plot_average

    _check_alignment_search(rotations, iterations)
    check_tilt_range(tilt_range)

    objl = read_objl(clusters_path)
    if not objl:
        raise InputError(f"{clusters_path}: the object list is empty")
    vols, vs = _particles_for_averaging(objl, clusters_path, dataset, box_size, voxel_size)
    labels = np.array([o["label"] for o in objl])
    wanted = sorted(set(labels.tolist()) if not clusters else clusters)
    missing = [c for c in wanted if c not in set(labels.tolist())]
    if missing:
        raise InputError(f"{clusters_path}: no cluster {missing[0]} (clusters: {sorted(set(labels.tolist()))})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {
        "clusters_file": str(clusters_path),
        "voxel_size": vs,
        "box_size": box_size,
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
            if len(members) < 4:
                logger.warning(f"cluster {c}: {len(members)} particles, too few to average (at least 4)")
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
        publish_folder(stage, out_dir, overwrite, last="averages.json")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def _pick_angles(objl: list) -> np.ndarray | None:
    """(N, 3) DeepFinder angles when every pick has finite ones, else None (the average starts from a sphere)."""
    try:
        angles = np.array([[float(o["phi"]), float(o["the"]), float(o["psi"])] for o in objl])
    except (KeyError, TypeError, ValueError):
        return None
    return angles if np.isfinite(angles).all() else None


def _particles_for_averaging(objl, clusters_path, dataset, box_size, voxel_size):
    """Sub-tomograms (N, B, B, B) of the objects, and their voxel size (Å)."""
    from .extract import extract_subtomograms

    if dataset is not None:
        ds = read_dataset(dataset)
        if len(ds.subtomograms) != len(objl):
            raise InputError(
                f"{clusters_path}: {len(objl)} objects but {dataset} has {len(ds.subtomograms)} sub-tomograms; "
                f"give the data set that was embedded"
            )
        return ds.subtomograms, ds.voxel_size
    sources = [o.get("source") for o in objl]
    if any(not s for s in sources):
        raise InputError(
            f"{clusters_path}: objects without a source tomogram; give --dataset for clusters of a data set"
        )
    paths = sorted(set(sources), key=sources.index)
    for p in paths:
        if not Path(p).exists():
            raise InputError(f"{clusters_path}: source tomogram {p} not found")
    vs = voxel_size or read_mrc_voxel_size(paths[0])
    index = {p: i for i, p in enumerate(paths)}
    picks = [{**o, "tomo_idx": index[o["source"]]} for o in objl]
    vols, _ = extract_subtomograms(paths, picks, box_size=box_size, voxel_size=vs, border="pad")
    return vols, vs


def adapt_to_file(
    out,
    *,
    model=None,
    objl_path=None,
    star_path=None,
    tomograms: Sequence[str] | None = None,
    subtomograms=None,
    dataset=None,
    copick: dict | None = None,
    voxel_size: float | None = None,
    method: str = "neighbours",
    rounds: int = 3,
    steps: int = 100,
    batch_size: int = 32,
    k: int | None = None,
    max_picks: int = 4000,
    seed: int = 0,
    overwrite: bool = False,
    structures: Sequence[str] | None = None,
    precision: str = "auto",
    tta: bool = True,
    neighbours: int | None = None,
    noise: float = 0.0,
    one_way_weight: float = 1.0,
):
    """``deepfinder-unsup adapt``: the user's unlabelled sub-tomograms (picks in tomograms, sub-tomogram files,
    a data set or a copick project; at most ``max_picks``, a random subset beyond) adapt ``model`` (see
    ``adapt.adapt``); the result (or the input model, when adaptation did not help) is written to ``out``."""
    from .adapt import adapt
    from .embed import Embedder
    from .extract import extract_subtomograms, load_dataset_subtomograms, load_subtomogram_files
    from .io.copick_project import read_copick_picks

    out = check_writable(out, overwrite)
    require_writable_folder(out.parent)
    embedder = Embedder(model)
    box, vs = embedder.box_size, embedder.voxel_size
    cache = Path(tempfile.mkdtemp(prefix=f".{out.name}.adapt-", dir=out.parent))
    try:
        if copick:
            objl, tomograms = read_copick_picks(
                copick["config"],
                copick["object"],
                cache,
                vs,
                copick.get("user"),
                copick.get("session"),
                copick.get("runs"),
                copick.get("tomo_type"),
            )
            source = f"copick {copick['config']} {copick['object']}"
        elif objl_path or star_path:
            if not tomograms:
                raise InputError("--objl / --star need --tomograms (the MRC files the picks were made in)")
            objl = read_objl(objl_path) if objl_path else read_star_picks(star_path, tomograms, voxel_size)
            _require_picks(objl, objl_path or star_path, "adapt on", len(tomograms))
            source = f"{objl_path or star_path} in {len(tomograms)} tomograms"
        else:
            objl = None
            source = str(subtomograms or dataset)
        if objl is not None:
            if len(objl) > max_picks:
                keep = np.sort(np.random.default_rng(seed).choice(len(objl), max_picks, replace=False))
                objl = [objl[i] for i in keep]
            vols, _ = extract_subtomograms(tomograms, objl, box, vs, border="pad", tomogram_voxel_size=voxel_size)
        elif subtomograms:
            vols, _ = load_subtomogram_files(subtomograms, box, vs, voxel_size)
        elif dataset:
            vols, _ = load_dataset_subtomograms(dataset, box, vs)
        else:
            raise InputError(
                "nothing to adapt on: give picks (--objl / --star with --tomograms), --copick, "
                "--subtomograms or --dataset"
            )
        if len(vols) > max_picks:
            vols = vols[np.sort(np.random.default_rng(seed).choice(len(vols), max_picks, replace=False))]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return adapt(
        embedder._resolved_path(),
        vols,
        out,
        method,
        rounds,
        steps,
        batch_size,
        k=k,
        seed=seed,
        source=source,
        overwrite=overwrite,
        structures=list(structures) if structures else None,
        precision=precision,
        tta=tta,
        neighbours=neighbours,
        noise=noise,
        one_way_weight=one_way_weight,
    )
