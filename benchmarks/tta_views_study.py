"""Does averaging over more views than ``--tta``'s four help? Small rotations about the tilt axis and shifts (#9, #13)

    python benchmarks/tta_views_study.py --model general --data runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 \
        --angles 10 --shifts 1 --cache runs/tta_views --out tta_views.json

``--tta`` averages a sub-tomogram's features over its four wedge-symmetric views (the three 180-degree rotations
about x, y, z): every view is a sub-tomogram the microscope could have recorded. Two more families keep that:
a rotation about the tilt axis (y) by a small angle turns a -a/+b tilt range into -a+t/+b+t (an asymmetric range,
as pre-tilted specimens give), and a shift by a voxel or two is a picking error the network was trained with.
Each extra transform is applied to the sub-tomogram and then the four views are taken, so every combination
is an average over the same group of four. Labels only to score: k-means V-measure at the true k on the unit mean
of the views' unit features (mean of 3 seeds) and a 5-fold logistic probe (protocol.py's). Chosen on design
sets; the protocol decides.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage


def rotate_about_tilt_axis(volumes: np.ndarray, degrees: float) -> np.ndarray:
    """Each volume (N, B, B, B; axes z, y, x) turned about y through the box centre ``B // 2`` (cubic spline)."""
    if degrees == 0:
        return volumes
    from deepfinder_unsup.volume import box_centre

    t = np.deg2rad(degrees)
    # output (z, x) -> input (z, x): the inverse rotation in the z-x plane; y unchanged
    matrix = np.array([[np.cos(t), 0, -np.sin(t)], [0, 1, 0], [np.sin(t), 0, np.cos(t)]])
    c = np.full(3, float(box_centre(volumes.shape[1])))
    offset = c - matrix @ c
    return np.stack([ndimage.affine_transform(v, matrix, offset, order=3, mode="nearest") for v in volumes])


def transforms(angles: list[float], shifts: list[int]) -> dict[str, tuple[float, int, int]]:
    """Name -> (degrees about y, shift along x, shift along z); the identity first."""
    out = {"id": (0.0, 0, 0)}
    for a in angles:
        out[f"y{a:+g}"], out[f"y{-a:+g}"] = (a, 0, 0), (-a, 0, 0)
    for s in shifts:
        out[f"x{s:+d}"], out[f"x{-s:+d}"] = (0.0, s, 0), (0.0, -s, 0)
        out[f"z{s:+d}"], out[f"z{-s:+d}"] = (0.0, 0, s), (0.0, 0, -s)
    return out


def view_embeddings(model: str, volumes: np.ndarray, spec: tuple[float, int, int], precision: str) -> np.ndarray:
    """(4, N, D) unit features of the four wedge-symmetric views of the transformed volumes."""
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.volume import wedge_symmetric_views

    degrees, dx, dz = spec
    moved = np.roll(rotate_about_tilt_axis(volumes, degrees), (dz, dx), axis=(1, 3))
    embedder = Embedder(model, precision=precision, tta=False)
    out = []
    for view in wedge_symmetric_views(moved):
        f = embedder.transform(np.ascontiguousarray(view))
        out.append(f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12))
    return np.stack(out)


def scores(features: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from view_ab import mean_v, unit

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return {
        "v_true_k_l2": round(mean_v(unit(features), truth), 4),
        "linear_probe": round(float(cross_val_score(probe, features, truth, cv=5).mean()), 4),
    }


def combinations(names: list[str]) -> dict[str, tuple[list[str], bool]]:
    """Combination -> (transforms, all four views or the first only)."""
    rotations = [n for n in names if n.startswith("y")]
    shifts = [n for n in names if n[0] in "xz"]
    out = {"one view": (["id"], False), "four views (--tta)": (["id"], True)}
    if rotations:
        out["one view x tilt-axis turns"] = (["id", *rotations], False)
        out["four views x tilt-axis turns"] = (["id", *rotations], True)
    if shifts:
        out["four views x shifts"] = (["id", *shifts], True)
    if rotations and shifts:
        out["four views x turns x shifts"] = (names, True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="general")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--angles", type=float, nargs="*", default=[10.0])
    ap.add_argument("--shifts", type=int, nargs="*", default=[1])
    ap.add_argument("--precision", default="bfloat16")
    ap.add_argument("--cache", type=Path, required=True, help="folder for the per-view features (re-scoring is free)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from deepfinder_unsup.io.dataset import read_dataset

    specs = transforms(args.angles, args.shifts)
    args.cache.mkdir(parents=True, exist_ok=True)
    result: dict = {"model": args.model, "precision": args.precision, "transforms": specs, "sets": {}}
    for path in args.data:
        ds = read_dataset(path)
        truth = np.array([int(o["label"]) for o in ds.objl])
        feats = {}
        for name, spec in specs.items():
            cached = args.cache / f"{Path(path).parent.name}_{Path(args.model).stem}_{name}.npy"
            if not cached.exists():
                start = time.time()
                np.save(cached, view_embeddings(args.model, ds.subtomograms, spec, args.precision))
                print(f"{path} {name}: {time.time() - start:.0f} s", flush=True)
            feats[name] = np.load(cached)
        result["sets"][path] = {}
        for combo, (names, four) in combinations(list(specs)).items():
            stack = np.concatenate([feats[n] if four else feats[n][:1] for n in names])
            mean = stack.mean(axis=0)
            result["sets"][path][combo] = {"views": len(stack), **scores(mean, truth)}
            print(path, combo, result["sets"][path][combo], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
