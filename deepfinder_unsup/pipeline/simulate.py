"""``simulate`` and ``simulate-tomogram``: labelled sub-tomograms or a crowded tomogram written to a folder."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.dataset import write_dataset
from ..io.files import InputError, atomic_path, check_writable
from ..io.mrc import write_mrc
from ..io.objl import new_object, write_objl
from ..io.shrec import write_shrec_locations
from ..log import logger

LIKE_BOXES = 300  # random boxes of a tomogram for ``simulate --like``


def _config_like_file(path, config, out_dir: Path, seed: int, overwrite: bool):
    """``config`` with the acquisition estimated from the boxes of ``path`` (tomogram or data set)."""
    from ..simulate.like import config_like, estimate_acquisition

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
    from ..extract import extract_subtomograms, load_dataset_subtomograms
    from ..io.mrc import read_mrc_geometry
    from .inputs import refuse_unset_voxel_size

    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        vols, _ = load_dataset_subtomograms(path, box, voxel_size)
        return vols
    size_xyz, tomo_vs = read_mrc_geometry(path)
    refuse_unset_voxel_size(path, tomo_vs, "set it in the header (IMOD: alterheader -del)")
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
    from ..simulate.config import SimConfig
    from ..simulate.dataset import simulate_dataset
    from ..simulate.structures import load_structures

    out_dir = Path(out_dir)
    for name in ("dataset.h5", "objects.xml", "classes.csv"):
        check_writable(out_dir / name, overwrite)
    config = SimConfig.from_file(config_path) if config_path else SimConfig()
    config.negative_class = config.negative_class and negative
    if like:
        config = _config_like_file(like, config, out_dir, seed, overwrite)
    structs = load_structures(structures, config.voxel_size)
    from ..compute import maybe_dask

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
    fill: bool = False,
) -> list[Path]:
    """``tomogram.mrc`` + ``objects.xml`` + ``particle_locations.txt`` + ``classes.csv`` in ``out_dir``
    (``fill``: ``particles`` is an upper bound, as many placed as fit without a warning)."""
    from ..simulate.config import SimConfig
    from ..simulate.scene import StructureLibrary, simulate_tomogram
    from ..simulate.structures import load_structures

    out_dir = Path(out_dir)
    paths = [out_dir / n for n in ("tomogram.mrc", "objects.xml", "particle_locations.txt", "classes.csv")]
    for p in paths:
        check_writable(p, overwrite)
    config = SimConfig.from_file(config_path) if config_path else SimConfig()
    structs = load_structures(structures, config.voxel_size)
    tomo, objl = simulate_tomogram(StructureLibrary(structs), shape, particles, membranes, config, seed, snr, fill)
    write_mrc(tomo, paths[0], config.voxel_size, overwrite)
    write_objl(objl, paths[1], overwrite)
    write_shrec_locations([{**o, "pdb_id": o["class_name"]} for o in objl], paths[2], overwrite)
    with atomic_path(paths[3], overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class_label", "name"])
        for i, s in enumerate(structs):
            writer.writerow([i + 1, s.name])
    return paths
