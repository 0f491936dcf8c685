"""``embed``: picks in tomograms (XML, STAR, copick), sub-tomogram files or a data set to an embeddings file;
picks are embedded unit by unit into a resumable partial file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..io.dataset import read_class_names, write_embeddings
from ..io.files import InputError, check_writable
from ..io.objl import read_objl
from ..log import logger
from .inputs import check_tomogram_headers, read_star_picks, require_picks, require_writable_folder


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
    from ..embed import Embedder, central_slices, resolve_precision
    from ..extract import load_dataset_subtomograms, load_subtomogram_files

    tomograms = list(tomograms or [])
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
        check_tomogram_headers(tomograms, voxel_size)
        objl = (
            read_objl(objl_path)
            if objl_path
            else read_star_picks(star_path, tomograms, voxel_size, tomogram_size, tomograms_star)
        )
        require_picks(objl, objl_path or star_path, "embed", tomograms)
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
    from ..embed import Embedder, resolve_precision
    from ..io.copick_project import read_copick_picks

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
    from ..compute import maybe_dask
    from ..embed import Embedder
    from ..streaming import open_partial, plan_units, resume_key, run_units

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
    source = {"tomograms": [str(t) for t in tomograms], "picks": str(picks_path), "picks_sha256": key["picks"]}
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
        from ..io import read_embeddings

        padded = sum(bool(o.get("border_padded")) for o in read_embeddings(out)[1])
    logger.info(
        f"{n} of {len(objl)} picks embedded"
        + (f", {padded} of them padded at the tomogram border" if padded else "")
        + (f", {len(objl) - n} skipped at the border" if n < len(objl) else "")
        + f" ({precision})"
    )
    return out, n
