"""The report of a clustering: PNG figures and one self-contained HTML page (images inlined).

Figures: t-SNE (scikit-learn) and, with the ``umap`` extra, UMAP maps of the embeddings coloured by cluster
and by truth (paper Fig. 2A/B); scores against k (Fig. 2C/D); the contingency matrix of clusters against truth
in percent of each true class (Fig. 3B); a gallery of central xy / xz slices per cluster (Fig. 4); cluster sizes.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics.cluster import contingency_matrix

from . import plot
from .io.files import atomic_path
from .threads import numeric_threads_on_free_cores

GALLERY_SIZE = 8  # particles shown per cluster
TSNE_MAX = 5000  # t-SNE beyond this many points is subsampled (fixed seed) to keep the report quick


def tsne_map(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates (perplexity min(30, (N-1)/3))."""
    n = len(embeddings)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)


def umap_map(embeddings: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """2-D UMAP coordinates, or None when umap-learn (extra ``umap``) is not installed."""
    from ._quiet import stderr_to_devnull

    try:
        with stderr_to_devnull():  # umap imports TensorFlow (parametric UMAP), which prints its start-up notices
            import umap
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state": seeded on purpose
        return umap.UMAP(
            n_components=2, random_state=seed, n_neighbors=min(15, len(embeddings) - 1), n_jobs=1
        ).fit_transform(embeddings)


def contingency_percent(truth: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency of true classes (rows) against clusters (columns), in percent of each true class."""
    t_vals, t_idx = np.unique(truth, return_inverse=True)
    c_vals, c_idx = np.unique(clusters, return_inverse=True)
    cm = contingency_matrix(t_idx, c_idx).astype(float)
    return 100 * cm / cm.sum(axis=1, keepdims=True), t_vals, c_vals


@numeric_threads_on_free_cores()  # t-SNE on the idle cores only (11x slower beside a training, session 50: threads.py)
def make_report(
    out_dir: str | os.PathLike,
    embeddings: np.ndarray,
    metrics_doc: dict,
    assignments: dict[int, np.ndarray],
    truth: np.ndarray | None = None,
    class_names: dict | None = None,
    slices: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    k: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    extra_figures: list[tuple[str, Path]] | None = None,
    padded: np.ndarray | None = None,
    objl: list | None = None,
    star_source: Path | None = None,
) -> Path:
    """Write the figures and ``report.html`` into ``out_dir``; returns the HTML path (``extra_figures``: more
    (title, PNG) pairs shown after the galleries, e.g. the clusters' averages; ``padded``: per particle, whether
    its box was padded at the tomogram border, flagged in the galleries; ``objl``: the particles' object list,
    which makes the t-SNE map interactive: hover, box selection, download as XML / STAR; ``star_source``: the STAR
    file the picks came from, whose own rows a selection can also be saved as).

    ``slices``: central slices (N, 2, B, B), or a function of particle indices that reads only those (large
    files: only the gallery's particles are ever loaded)."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    k = k or metrics_doc["selected_k"]
    clusters = assignments[k]
    rng = np.random.default_rng(seed)
    sel = (
        np.sort(rng.choice(len(embeddings), TSNE_MAX, replace=False))
        if len(embeddings) > TSNE_MAX
        else np.arange(len(embeddings))
    )
    maps = {"t-SNE": tsne_map(embeddings[sel], seed)}
    um = umap_map(embeddings[sel], seed)
    if um is not None:
        maps["UMAP"] = um
    figures = _map_figures(maps, sel, clusters, truth, class_names, k, fig_dir)
    figures += _score_figures(metrics_doc, clusters, truth, class_names, k, fig_dir)
    sizes = {int(c): int((clusters == c).sum()) for c in np.unique(clusters)}
    figures.append(
        ("Cluster sizes", plot.plot_cluster_sizes(sizes, fig_dir / f"sizes_k{k}.png", f"cluster sizes, k = {k}"))
    )
    if slices is not None:
        figures += _gallery_figures(clusters, sizes, slices, padded, k, fig_dir)
    figures.extend(extra_figures or [])
    section = ""
    if objl is not None:
        section = _interactive_map(maps["t-SNE"], sel, clusters, objl, truth, class_names, slices, k, seed, star_source)
    return write_html(out_dir / "report.html", metrics_doc, figures, k, overwrite, section)


def _map_figures(maps: dict, sel, clusters, truth, class_names, k: int, fig_dir: Path) -> list[tuple[str, Path]]:
    """Each 2-D map (t-SNE, UMAP) coloured by cluster, and by true class when known."""
    figures = []
    for name, coords in maps.items():
        tag = name.lower().replace("-", "")
        figures.append(
            (
                f"{name}, coloured by cluster (k = {k})",
                plot.plot_embedding_map(
                    coords, clusters[sel], fig_dir / f"{tag}_clusters.png", f"{name}: clusters (k = {k})"
                ),
            )
        )
        if truth is not None:
            figures.append(
                (
                    f"{name}, coloured by true class",
                    plot.plot_embedding_map(
                        coords,
                        truth[sel],
                        fig_dir / f"{tag}_truth.png",
                        f"{name}: true classes",
                        class_names,
                        palette="classes",
                    ),
                )
            )
    return figures


def _score_figures(metrics_doc: dict, clusters, truth, class_names, k: int, fig_dir: Path) -> list[tuple[str, Path]]:
    """The label-free scores against k; with a truth, its scores against k and the contingency matrix at k."""
    per_k = metrics_doc["per_k"]
    selected = metrics_doc.get("selected_k")
    true_k = len(np.unique(truth)) if truth is not None else None
    curves = [
        (
            "Label-free scores against k (the largest eigengap of the neighbour graph selects k)",
            "scores_label_free.png",
            ["silhouette", "davies_bouldin", "eigengap", "calinski_harabasz"],
            "label-free scores",
        ),
        (
            "Scores against the truth",
            "scores_truth.png",
            ["homogeneity", "completeness", "v_measure", "ari"],
            "homogeneity / completeness / V-measure",
        ),
    ]
    figures = [
        (title, plot.plot_metric_curves(per_k, fig_dir / png, keys, label, selected_k=selected, true_k=true_k))
        for title, png, keys, label in curves[: 1 if truth is None else 2]
    ]
    if truth is None:
        return figures
    pct, t_vals, c_vals = contingency_percent(truth, clusters)
    rows = [(class_names or {}).get(int(t), str(t)) for t in t_vals]
    figures.append(
        (
            "Contingency matrix (% of each true class)",
            plot.plot_matrix(
                pct,
                rows,
                [str(c) for c in c_vals],
                fig_dir / f"contingency_k{k}.png",
                f"clusters vs truth, k = {k} (%)",
                "cluster",
                "true class",
            ),
        )
    )
    return figures


def _gallery_figures(clusters, sizes: dict, slices, padded, k: int, fig_dir: Path) -> list[tuple[str, Path]]:
    """Per cluster, the central slices of its first ``GALLERY_SIZE`` particles (border-padded ones flagged)."""
    figures = []
    for c in sizes:
        members = np.flatnonzero(clusters == c)[:GALLERY_SIZE]
        member_slices = slices(members) if callable(slices) else slices[members]
        flags = None if padded is None else np.asarray(padded)[members]
        figures.append(
            (
                f"Cluster {c}: central xy (top) and xz (bottom) slices",
                plot.plot_gallery(
                    member_slices,
                    fig_dir / f"gallery_k{k}_c{c}.png",
                    f"cluster {c} ({sizes[c]} particles)",
                    padded=flags,
                ),
            )
        )
    return figures


def _interactive_map(coords, sel, clusters, objl, truth, class_names, slices, k, seed, star_source=None) -> str:
    from .interactive import THUMBNAILS_MAX, interactive_section, map_data

    rng = np.random.default_rng(seed + 1)
    local = np.arange(len(sel)) if len(sel) <= THUMBNAILS_MAX else np.sort(rng.choice(len(sel), THUMBNAILS_MAX, False))
    thumb_slices = None
    if slices is not None:
        thumb_slices = slices(sel[local]) if callable(slices) else np.asarray(slices)[sel[local]]
    names = None if truth is None else [(class_names or {}).get(int(t), str(t)) for t in truth[sel]]
    from .cluster import source_geometry

    shown = [objl[i] for i in sel]
    data = map_data(coords, clusters[sel], shown, names, local, thumb_slices, star_source, source_geometry(shown))
    return interactive_section(data, f"Interactive t-SNE map (k = {k}): {len(sel)} particles")


def write_html(
    path: Path,
    metrics_doc: dict,
    figures: list[tuple[str, Path]],
    k: int,
    overwrite: bool = False,
    interactive: str = "",
) -> Path:
    """One self-contained HTML page: a score table and every figure inlined as base64 PNG."""
    keys = [
        key
        for key in (
            "k",
            "silhouette",
            "calinski_harabasz",
            "davies_bouldin",
            "eigengap",
            "bic",
            "homogeneity",
            "completeness",
            "v_measure",
            "ari",
            "nmi",
        )
        if key in metrics_doc["per_k"][0]
    ]
    head = "".join(f"<th>{key}</th>" for key in keys)
    head += "<th>object lists</th>"

    def cell(value) -> str:
        return f"<td>{value:.3f}</td>" if isinstance(value, float) else f"<td>{value}</td>"

    rows = "".join(
        ("<tr class='selected'>" if r["k"] == metrics_doc.get("selected_k") else "<tr>")
        + "".join(cell(r[key]) for key in keys)
        + f"<td><a href='clusters_k{r['k']}.xml'>XML</a> <a href='clusters_k{r['k']}.star'>STAR</a></td></tr>"
        for r in metrics_doc["per_k"]
    )
    imgs = "".join(
        f"<figure><img src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, p in figures
    )
    summary = f"selected k = {metrics_doc['selected_k']} ({html.escape(metrics_doc['selection_rule'])})"
    if "best_k_by_v_measure" in metrics_doc:
        best = next(r for r in metrics_doc["per_k"] if r["k"] == metrics_doc["best_k_by_v_measure"])
        summary += f"; best k by V-measure = {best['k']} (V = {best['v_measure']:.3f})"
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>deepfinder-unsup report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:right}}figure{{display:inline-block;margin:1em;vertical-align:top}}
img{{max-width:640px}}tr.selected{{background:#ffe9a8;font-weight:bold}}</style></head>
<body><h1>deepfinder-unsup: clustering report</h1>
<p>{metrics_doc["n_particles"]} particles, method {html.escape(metrics_doc["method"])}; {summary}.
Figures below are for k = {k}.</p><table><tr>{head}</tr>{rows}</table>{interactive}{imgs}
<pre>{html.escape(json.dumps({k_: v for k_, v in metrics_doc.items() if k_ != "per_k"}, indent=1))}</pre>
</body></html>"""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(page)
    return path
