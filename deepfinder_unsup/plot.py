"""Figures (PNG, matplotlib Agg): maps of embeddings, metric curves, contingency and confusion matrices,
galleries of central slices, training curves."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io.files import atomic_path  # noqa: E402


def _save(fig, path) -> Path:
    """Write a figure atomically (callers write into a fresh or staging folder, or replace their own plots)."""
    path = Path(path)
    try:
        with atomic_path(path, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def plot_matrix(
    matrix: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    path,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = "{:.0f}",
) -> Path:
    """A matrix as a heat map with its values written in the cells."""
    matrix = np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(col_names), 1.0 + 0.4 * len(row_names)))
    ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(col_names)), col_names, rotation=90)
    ax.set_yticks(range(len(row_names)), row_names)
    vmax = matrix.max() if matrix.size else 1
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(
                j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if v > 0.6 * vmax else "black"
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, names: Sequence[str], path, title: str = "confusion matrix (%)") -> Path:
    """Row-normalised confusion matrix in percent (true class per row), paper Fig. 3A."""
    cm = np.asarray(cm, float)
    pct = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    return plot_matrix(pct, names, names, path, title, "predicted class", "true class")


def plot_training_curves(history_csv, path) -> Path:
    """Loss and accuracy per epoch (training and validation) from Keras' CSV log."""
    with open(history_csv) as fh:
        rows = list(csv.DictReader(fh))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    accuracy = "class_output_accuracy" if rows and "class_output_accuracy" in rows[0] else "accuracy"
    for ax, key in zip(axes, ("loss", accuracy)):  # a model that also predicts binding names its outputs
        for prefix, style in (("", "-"), ("val_", "--")):
            if rows and prefix + key in rows[0]:
                ax.plot(epochs, [float(r[prefix + key]) for r in rows], style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    return _save(fig, path)


def plot_embedding_map(
    coords: np.ndarray, labels: np.ndarray, path, title: str, names: dict | None = None, palette: str = "clusters"
) -> Path:
    """A 2-D map (t-SNE / UMAP) coloured by label, paper Fig. 2A/B: equal axes (distances mean the same along x
    and y), clusters and true classes in different palettes (``palette`` 'clusters' or 'classes')."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    uniq = np.unique(labels)
    if palette == "clusters":
        cmap = plt.get_cmap("tab20" if len(uniq) > 10 else "tab10")
    else:
        cmap = plt.get_cmap("Dark2" if len(uniq) <= 8 else "tab20b")
    for i, lab in enumerate(uniq):
        sel = labels == lab
        ax.scatter(
            coords[sel, 0],
            coords[sel, 1],
            s=6,
            color=cmap(i % cmap.N),
            marker="o" if palette == "clusters" else "^",
            label=(names or {}).get(int(lab), str(lab)),
        )
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(markerscale=2.5, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _save(fig, path)


def plot_metric_curves(
    per_k: list[dict],
    path,
    keys: Sequence[str],
    title: str,
    selected_k: int | None = None,
    true_k: int | None = None,
) -> Path:
    """Scores against k, paper Fig. 2C/D; the Calinski-Harabasz score on its own axis (its scale grows with the
    number of picks); the eigengap, the label-free rule, drawn thick; the selected k and the true k marked."""
    ks = [r["k"] for r in per_k]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key in keys:
        if per_k and key in per_k[0] and key != "calinski_harabasz":
            selects = key == "eigengap"
            ax.plot(
                ks,
                [r[key] for r in per_k],
                "o-",
                ms=3,
                lw=2.5 if selects else 1.5,
                label=key + (" (selects k)" if selects else ""),
            )
    handles, labels = ax.get_legend_handles_labels()
    if "calinski_harabasz" in keys and per_k and "calinski_harabasz" in per_k[0]:
        ax2 = ax.twinx()
        (line,) = ax2.plot(ks, [r["calinski_harabasz"] for r in per_k], "s--", ms=3, color="black")
        ax2.set_ylabel("Calinski-Harabasz")
        handles, labels = handles + [line], labels + ["calinski_harabasz"]
    if selected_k is not None:
        handles.append(ax.axvline(selected_k, color="tab:red", lw=1.2))
        labels.append(f"selected k = {selected_k}")
    if true_k is not None:
        handles.append(ax.axvline(true_k, color="tab:green", lw=1.2, ls=":"))
        labels.append(f"true k = {true_k}")
    ax.set_xlabel("k (number of clusters)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(handles, labels, fontsize=7)
    return _save(fig, path)


def plot_gallery(
    slices: np.ndarray, path, title: str, n: int = 8, padded: Sequence[bool] | np.ndarray | None = None
) -> Path:
    """Central xy (top row) and xz (bottom row) slices (N, 2, B, B) of up to ``n`` sub-tomograms, Fig. 4; rows
    labelled; particles padded at the tomogram border (``padded``) framed in orange and marked "border"."""
    n = min(n, len(slices))
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.3 * max(n, 1) + 0.5, 2.9), squeeze=False)
    for i in range(max(n, 1)):
        for row in range(2):
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
            if i >= n:
                axes[row, i].axis("off")
        if i >= n:
            continue
        axes[0, i].imshow(slices[i][0], cmap="gray")
        axes[1, i].imshow(slices[i][1], cmap="gray")
        if padded is not None and padded[i]:
            for row in range(2):
                for spine in axes[row, i].spines.values():
                    spine.set_color("tab:orange")
                    spine.set_linewidth(2)
            axes[0, i].set_title("border", fontsize=7, color="tab:orange")
    axes[0, 0].set_ylabel("xy", fontsize=8)
    axes[1, 0].set_ylabel("xz", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_cluster_sizes(sizes: dict, path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([str(k) for k in sizes], list(sizes.values()), color="tab:blue")
    ax.set_xlabel("cluster")
    ax.set_ylabel("particles")
    ax.set_title(title)
    return _save(fig, path)


def plot_dendrogram(tree: np.ndarray, sizes: Sequence[int], path, title: str) -> Path:
    """Average-linkage tree of over-clustered centroids; each leaf labelled with its number of particles (a
    small cluster far from the others is a candidate rare structure)."""
    from scipy.cluster.hierarchy import dendrogram

    fig, ax = plt.subplots(figsize=(max(5.0, 0.28 * len(sizes)), 3.2))
    dendrogram(tree, ax=ax, labels=[str(int(n)) for n in sizes], color_threshold=0, above_threshold_color="tab:blue")
    ax.set_xlabel("over-clustered groups (particles in each)")
    ax.set_ylabel("cosine distance (average linkage)")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title)
    return _save(fig, path)


def plot_average(
    average: np.ndarray, fsc: np.ndarray, freqs: np.ndarray, path, title: str, measured: np.ndarray | None = None
) -> Path:
    """A cluster's average: central xy / xz / yz slices, a projection along z, and the half-set FSC curve (with
    ``measured``, the FSC before the correction for the half maps' alignment, dotted)."""
    c = average.shape[0] // 2
    views = [("xy", average[c]), ("xz", average[:, c]), ("yz", average[:, :, c]), ("z projection", average.sum(0))]
    fig, axes = plt.subplots(1, 5, figsize=(12, 2.6))
    for ax, (name, image) in zip(axes, views):
        ax.imshow(image, cmap="gray")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    ax = axes[-1]
    ax.plot(freqs[1:], fsc[1:], color="tab:blue", label="corrected")
    if measured is not None:
        ax.plot(freqs[1:], measured[1:], color="tab:blue", ls=":", lw=0.9, label="measured")
        ax.legend(fontsize=6, frameon=False)
    ax.axhline(0.143, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("1/Å", fontsize=8)
    ax.set_ylabel("FSC (half-sets)", fontsize=8)
    ax.set_ylim(-0.1, 1.05)
    ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
