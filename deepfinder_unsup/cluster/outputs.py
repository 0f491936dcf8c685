"""What ``cluster`` writes back into the user's workflow: metrics.json, clusters.csv and one object list per
cluster (DeepFinder XML, RELION STAR with the source's geometry)."""

from __future__ import annotations

import copy
import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.files import InputError, atomic_path
from ..io.objl import Objl, write_objl
from ..io.star import write_star
from .choose_k import SELECTION_RULE, select_k


def metrics_document(per_k: list[dict], method: str, evaluate: bool, n: int) -> dict:
    """The content of metrics.json (schema in docs/formats.md)."""
    doc = {
        "method": method,
        "n_particles": int(n),
        "selection_rule": SELECTION_RULE,
        "per_k": per_k,
        "selected_k": select_k(per_k),
    }
    if evaluate:
        doc["best_k_by_v_measure"] = int(max(per_k, key=lambda r: (r["v_measure"], -r["k"]))["k"])
    return doc


def clustered_objl(objl: Objl, cluster_labels: np.ndarray) -> Objl:
    """A copy of ``objl`` where the cluster is the class: ``label`` = cluster number (1-based), ``class_name`` =
    ``cluster{C}``; the input's class is kept as ``true_label`` / ``true_class_name`` (never read as the class)."""
    if len(objl) != len(cluster_labels):  # zip would drop the tail of the longer silently
        raise InputError(f"{len(objl)} objects but {len(cluster_labels)} cluster labels: one label per object")
    out = []
    for obj, lab in zip(objl, cluster_labels):
        new = copy.copy(obj)
        if obj.get("label") is not None and "true_label" not in obj:
            new["true_label"] = obj["label"]
        if obj.get("class_name") is not None and "true_class_name" not in obj:
            new["true_class_name"] = obj["class_name"]
        new["label"] = int(lab)
        new["class_name"] = f"cluster{int(lab)}"
        out.append(new)
    return out


def write_cluster_files(
    objl: Objl,
    assignments: dict[int, np.ndarray],
    out_dir: str | os.PathLike,
    tomo_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """``clusters_k{K}.xml`` and ``.star`` per k, and ``clusters.csv`` (one row per particle, one column per k)."""
    out_dir = Path(out_dir)
    written = []
    geometry = source_geometry(objl)
    for k, labels in assignments.items():
        cl = clustered_objl(objl, labels)
        written.append(write_objl(cl, out_dir / f"clusters_k{k}.xml", overwrite=overwrite))
        star = out_dir / f"clusters_k{k}.star"
        written.append(write_star(cl, star, tomo_names=tomo_names, overwrite=overwrite, geometry=geometry))
    written.append(write_clusters_csv(objl, assignments, out_dir / "clusters.csv", overwrite))
    return written


def source_geometry(objl: Objl) -> dict:
    """{tomogram stem: ((size x, y, z), voxel size)} of the objects' source tomograms that can be read (for the
    STAR files' RELION 5 coordinates); unreadable or missing sources are left out."""
    from ..io.mrc import read_mrc_geometry

    geometry = {}
    for source in {str(o["source"]) for o in objl if o.get("source")}:
        if source.endswith((".mrc", ".rec", ".map")) and Path(source).exists():
            try:
                geometry[Path(source).stem] = read_mrc_geometry(source)
            except InputError:
                continue
    return geometry


def write_clusters_csv(objl: Objl, assignments: dict[int, np.ndarray], path, overwrite: bool = False) -> Path:
    ks = sorted(assignments)
    with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["index", "tomo_idx", "obj_id", "x", "y", "z", "class_label", "source"] + [f"cluster_k{k}" for k in ks]
        )
        for i, obj in enumerate(objl):
            writer.writerow(
                [
                    i,
                    obj.get("tomo_idx"),
                    obj.get("obj_id"),
                    obj["x"],
                    obj["y"],
                    obj["z"],
                    obj.get("label"),
                    obj.get("source", ""),
                ]
                + [int(assignments[k][i]) for k in ks]
            )
    return Path(path)


def strict_json(value):
    """``value`` with every NaN / inf float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_metrics(doc: dict, path, overwrite: bool = False) -> Path:
    """metrics.json, strict JSON (undefined scores are null)."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(strict_json(doc), indent=2, allow_nan=False))
    return Path(path)
