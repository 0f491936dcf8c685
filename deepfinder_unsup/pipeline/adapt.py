"""``adapt``: f_theta adapted to the user's unlabelled sub-tomograms."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.files import InputError, check_writable
from ..io.objl import read_objl
from .inputs import check_tomogram_headers, read_star_picks, require_picks, require_writable_folder


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
    from ..adapt import adapt
    from ..embed import Embedder
    from ..extract import extract_subtomograms, load_dataset_subtomograms, load_subtomogram_files
    from ..io.copick_project import read_copick_picks

    tomograms = list(tomograms or [])
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
            check_tomogram_headers(tomograms, voxel_size)
            objl = read_objl(objl_path) if objl_path else read_star_picks(star_path, tomograms, voxel_size)
            require_picks(objl, objl_path or star_path, "adapt on", tomograms)
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
