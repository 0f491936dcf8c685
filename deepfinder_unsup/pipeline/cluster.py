"""``cluster``: the k sweep on an embeddings file, per-cluster object lists, the report (and averages)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..io.dataset import read_embedding_slices, read_embeddings
from ..io.files import InputError, publish_folder
from ..io.objl import write_objl
from ..io.star import write_star
from ..log import logger
from ..threads import numeric_threads_on_free_cores
from .average import average_to_folder, check_alignment_search, source_tomograms

# what a run writes besides metrics.json, by the names it gives them: with --overwrite, an earlier run's files that
# this one does not write go, found by its cluster_outputs.txt; in a folder from before that list (session 52) the
# files with these names are moved aside into earlier_outputs_<time>/ instead (one may be the user's)
CLUSTER_OUTPUTS = (
    "clusters.csv",
    "report.html",
    "clusters_k*.xml",
    "clusters_k*.star",
    "clusters_rare*.xml",
    "clusters_rare*.star",
    "figures/sizes_k*.png",
    "figures/tsne_*.png",
    "figures/umap_*.png",
    "figures/scores_*.png",
    "figures/contingency_k*.png",
    "figures/gallery_k*_c*.png",
    "figures/rare_dendrogram.png",
    "figures",
    "averages_k*/cluster*.mrc",
    "averages_k*/fsc.csv",
    "averages_k*/averages.json",
    "averages_k*/figures/average_c*.png",
    "averages_k*/figures",
    "averages_k*",
)


@numeric_threads_on_free_cores()  # OpenMP / BLAS threads on the idle cores only: see threads.py
def cluster_to_folder(
    embeddings_path,
    k_spec: str | None,
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

    ``k_spec``: the k values ('2:15', '3,5,8'); None: 2..15 cut to what the picks can give (k below their number).

    ``rare``: also clusters with no k that may be as small as ``min_cluster_size`` (default 1 % of the picks),
    by ``rare_method`` (``coassociation``: what many over-clusterings agree on; ``hdbscan``: dense regions), in
    ``clusters_rare.xml/.star`` (cluster 0: picks in no cluster), its summary in metrics.json, and a
    dendrogram of 30 over-clustered groups in the report, for structures too rare for the k sweep.

    ``normalise``: 'l2' clusters each embedding scaled to unit length, 'none' the raw embeddings. ``average``:
    also average every cluster of the report's k (``averages_k{K}/``, see ``average_to_folder``; particles from
    their source tomograms, or from ``dataset``; ``average_rotations``, ``average_iterations``: its search) and
    show the averages in the report."""
    from ..cluster import check_clusterable, metrics_document, normalise_features, sweep_k, write_metrics

    out_dir = Path(out_dir)
    ks = _checked_request(k_spec, report_k, rare, rare_method, min_cluster_size)
    if average:
        check_alignment_search(average_rotations, average_iterations)
    emb, objl, attrs = read_embeddings(embeddings_path)
    if average and dataset is None:
        source_tomograms(objl, embeddings_path)  # the averages re-extract from them: refused now, not after the sweep
    if copick:
        from ..io.copick_project import check_copick_origin

        check_copick_origin(objl, copick)
    if k_spec is None:
        ks = _default_ks_for(emb, report_k, str(embeddings_path))
    _refuse_existing_cluster_outputs(out_dir, ks, overwrite)
    star_source = _input_star_file(objl, attrs, embeddings_path)  # read (or refused) before the sweep
    truth = _true_classes(objl, embeddings_path) if evaluate else None
    check_clusterable(emb, ks, str(embeddings_path))
    emb = normalise_features(emb, normalise, str(embeddings_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    per_k, assignments = sweep_k(emb, ks, method, truth, seed, where=str(embeddings_path))
    doc = metrics_document(per_k, method, evaluate, len(emb))
    doc["embeddings"] = str(embeddings_path)
    doc["normalise"] = normalise
    rare_result = _rare_structures(emb, truth, min_cluster_size, seed, rare_method, doc) if rare else None
    k = report_k if report_k is not None else doc["selected_k"]
    html = None
    # everything is written into a hidden staging folder and moved into place at the end (metrics.json
    # last): an interrupted run leaves nothing under the final names, and a rerun starts clean
    stage = Path(tempfile.mkdtemp(prefix=".cluster-", dir=out_dir))
    try:
        from ..cluster import write_cluster_files

        write_cluster_files(objl, assignments, stage)
        labelings = {f"k{k}": labels for k, labels in assignments.items()}
        if rare_result is not None:
            labelings["rare"] = rare_result["labels"]
        _write_clusters_in_the_input_star(objl, star_source, labelings, stage)
        figures = []
        if rare_result is not None:
            _write_rare_clusters(objl, rare_result, stage)
            if report:
                figures.append(_rare_dendrogram(rare_result, rare_method, stage))
        write_metrics(doc, stage / "metrics.json")
        if average:
            figures += _average_clusters(stage, k, assignments[k], dataset, average_rotations, average_iterations)
        if report:
            from ..report import make_report

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
                extra_figures=figures,
                padded=np.array([bool(o.get("border_padded")) for o in objl]),
                objl=objl,
                star_source=star_source,
            )
            html = out_dir / "report.html"
        publish_folder(
            stage, out_dir, overwrite, last="metrics.json", manifest="cluster_outputs.txt", replaces=CLUSTER_OUTPUTS
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if copick:
        from ..io.copick_project import write_copick_clusters

        written = write_copick_clusters(copick, objl, assignments[k], k, overwrite)
        logger.info(f"copick: {len(written)} pick sets written (user deepfinder-unsup, sessions k{k}-cluster*)")
    return doc, html


def _checked_request(k_spec: str | None, report_k, rare: bool, rare_method: str, min_cluster_size) -> list[int]:
    """The k values to cluster; one clear error for a request that cannot be honoured, before any work."""
    from ..cluster import DEFAULT_K_RANGE, RARE_METHODS, parse_k_range

    ks = parse_k_range(DEFAULT_K_RANGE if k_spec is None else k_spec)
    if report_k is not None and report_k not in ks:
        raise InputError(f"--report-k {report_k} is not among the k values clustered ({k_spec or DEFAULT_K_RANGE})")
    if rare and rare_method not in RARE_METHODS:
        raise InputError(f"unknown rare-structure method {rare_method!r}; choose from {', '.join(RARE_METHODS)}")
    if min_cluster_size is not None and min_cluster_size < 2:
        raise InputError(f"--min-cluster-size {min_cluster_size}: a cluster needs at least 2 particles")
    return ks


def _default_ks_for(emb: np.ndarray, report_k: int | None, where: str) -> list[int]:
    """The default sweep cut to the picks (said when cut); the report's k must survive the cut."""
    from ..cluster import DEFAULT_K_RANGE, check_clusterable, default_ks, parse_k_range

    ks = default_ks(emb)
    if not ks:
        check_clusterable(emb, [2], where)  # its error says why not even k = 2 can be clustered
    if report_k is not None and report_k not in ks:
        raise InputError(f"{where}: --report-k {report_k} needs more than {len(emb)} different particles")
    if len(ks) < len(parse_k_range(DEFAULT_K_RANGE)):
        logger.info(f"k = {ks[0]}..{ks[-1]} (the default {DEFAULT_K_RANGE} cut to {len(emb)} particles)")
    return ks


def _true_classes(objl, embeddings_path) -> np.ndarray:
    """The particles' class labels, for ``--evaluate``: every particle needs one, and two classes at least."""
    labels = [o.get("label") for o in objl]
    if any(lab is None for lab in labels):
        raise InputError(f"{embeddings_path}: --evaluate needs a class_label for every particle")
    truth = np.array(labels, int)
    if len(np.unique(truth)) < 2:
        raise InputError(f"{embeddings_path}: --evaluate needs at least two true classes in class_label")
    return truth


def _rare_structures(emb, truth, min_cluster_size, seed: int, rare_method: str, doc: dict) -> dict:
    """Clusters with no k (``cluster.rare_analysis``); their summary (and scores, with a truth) go into ``doc``."""
    from ..cluster import rare_analysis, truth_scores

    result = rare_analysis(emb, min_cluster_size, seed, rare_method)
    doc["rare"] = result["summary"]
    if truth is not None:
        doc["rare"].update(truth_scores(truth, result["labels"]))
    return result


def _rare_dendrogram(rare_result: dict, rare_method: str, stage: Path) -> tuple[str, Path]:
    """The report's figure of the rare structures: the tree of 30 over-clustered groups, with its title."""
    from ..cluster import RARE_METHODS
    from ..plot import plot_dendrogram

    summary = rare_result["summary"]
    title = (
        f"Rare structures: {RARE_METHODS[rare_method]} found {summary['n_clusters']} clusters (sizes "
        f"{', '.join(str(n) for n in summary['sizes'].values())}; {summary['unassigned']} unassigned, "
        f"clusters_rare.xml); the tree of 30 over-clustered groups (leaf: particles)"
    )
    png = stage / "figures" / "rare_dendrogram.png"
    plot_dendrogram(rare_result["tree"], rare_result["group_sizes"], png, "over-clustered groups")
    return title, png


def _average_clusters(
    stage: Path, k: int, labels: np.ndarray, dataset, rotations: int, iterations: int
) -> list[tuple[str, Path]]:
    """Every cluster of ``clusters_k{k}.xml`` averaged into ``averages_k{k}/``; the report's figures of them (none,
    with a warning, when no cluster has the particles an average needs: the clustering stands without them)."""
    from ..average import MIN_PARTICLES

    if np.bincount(labels).max() < MIN_PARTICLES:
        logger.warning(f"k = {k}: no cluster has the {MIN_PARTICLES} particles an average needs; no averages")
        return []
    averages = average_to_folder(
        stage / f"clusters_k{k}.xml",
        stage / f"averages_k{k}",
        dataset=dataset,
        rotations=rotations,
        iterations=iterations,
        overwrite=True,
    )
    figures = []
    for c, row in averages["clusters"].items():
        title = f"Cluster {c} average ({row['particles']} particles, {row['resolution_A']} Å at FSC 0.143)"
        figures.append((title, stage / f"averages_k{k}" / "figures" / f"average_c{c}.png"))
    return figures


def _input_star_file(objl, attrs: dict, embeddings_path) -> Path | None:
    """The STAR file the picks came from (``embed --star``), where ``embed`` read it or beside the embeddings file;
    None for picks from elsewhere, or (with a warning) when that file is gone or changed since ``embed`` read it
    (its rows may no longer be the embedded picks: a re-sorted or rewritten file would give each cluster the wrong
    particles)."""
    import json

    try:
        source = json.loads(attrs.get("source") or "{}")
        picks, digest = source.get("picks"), source.get("picks_sha256")
    except (json.JSONDecodeError, AttributeError):
        return None
    if not picks or Path(picks).suffix != ".star" or any(o.get("star_row") is None for o in objl):
        return None
    found = next((p for p in (Path(picks), Path(embeddings_path).parent / picks) if p.is_file()), None)
    if found is None:
        logger.warning(f"{picks}: the STAR file the picks came from is gone: no clusters_*_particles.star")
        return None
    from ..streaming import file_digest

    changed = file_digest(found) != digest if digest else _fewer_rows_than_named(found, objl)
    if changed:  # embeddings from before session 50 carry no digest: only a file too short for them is told
        logger.warning(
            f"{found}: changed since embed read the picks from it (its rows may no longer be the embedded picks): "
            f"no clusters_*_particles.star; clusters_k*.star and .xml hold the clusters"
        )
        return None
    return found


def _fewer_rows_than_named(star: Path, objl) -> bool:
    """Whether the STAR file has fewer particle rows than the picks name (it shrank since ``embed`` read it)."""
    from ..io.star import star_particle_count

    return star_particle_count(star) <= max(int(o["star_row"]) for o in objl)


def _write_clusters_in_the_input_star(objl, star_source: Path | None, labelings: dict, folder: Path) -> None:
    """``clusters_{name}_particles.star`` for each labelling (``k2``, ..., ``rare``) of picks from ``star_source``:
    that file's own tables and columns, its rows of the embedded picks, ``rlnClassNumber`` = cluster: what goes back
    to RELION or Warp in their own conventions (``clusters_{name}.star`` holds the package's columns only)."""
    from ..io.star import write_star_rows

    if star_source is None:
        return
    rows = [int(o["star_row"]) for o in objl]
    for name, labels in labelings.items():
        write_star_rows(star_source, rows, labels, folder / f"clusters_{name}_particles.star")


def _slice_reader(embeddings_path):
    """A reader of the stored central slices by row, or None when the file has none (the report then shows no
    galleries: embeddings written by the API need not carry slices)."""
    if read_embedding_slices(embeddings_path, [0]) is None:
        return None
    return lambda rows: read_embedding_slices(embeddings_path, rows)


def _write_rare_clusters(objl, rare_result: dict, folder: Path) -> None:
    from ..cluster import clustered_objl, source_geometry

    cl = clustered_objl(objl, rare_result["labels"])
    write_objl(cl, folder / "clusters_rare.xml")
    write_star(cl, folder / "clusters_rare.star", geometry=source_geometry(objl))


def _refuse_existing_cluster_outputs(out_dir: Path, ks, overwrite: bool) -> None:
    """Fail before any work if an output of ``cluster`` already exists (and not ``overwrite``)."""
    if overwrite or not out_dir.exists():
        return
    labelings = ["rare", *(f"k{k}" for k in ks)]
    names = ["metrics.json", "clusters.csv", "report.html"] + [
        f"clusters_{name}{end}" for name in labelings for end in (".xml", ".star", "_particles.star")
    ]
    existing = [out_dir / n for n in names if (out_dir / n).exists()]
    if (out_dir / "figures").is_dir() and any((out_dir / "figures").iterdir()):
        existing.append(out_dir / "figures")
    if existing:
        raise FileExistsError(f"{existing[0]}: exists; pass --overwrite to replace the outputs in {out_dir}")
