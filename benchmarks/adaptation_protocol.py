"""The adaptation protocol (issue #13): four target domains outside the training ranges, labels used only to score.

    python benchmarks/adaptation_protocol.py --model general --methods pseudolabel infomax --out adaptation.json

Each domain (simulated once, cached under --data) holds 7 classes: at least 3 structures no training run touches
(2uv8, 6utj, 6pxm, 7n4y, 5tqq), 1-2 trained ones (1bxn, 4cr2), negatives; 90 sub-tomograms each, except one rare
class cut to 12 (2 % of 552):

| domain | microscope (``benchmarks/configs/domain_*.json``) | rare class |
|---|---|---|
| strong_ctf | 18 Å acquisition pixels, 7-8 µm defocus, no CTF correction, +-45 degrees | 6pxm |
| denoised | coloured noise (1/k^2), low-passed at 0.3 Nyquist (a cryo-CARE / IsoNet look), higher SNR | 2uv8 |
| phase_plate | phase plate near focus, 220-260 e/Å^2, little CTF modulation | 6utj |
| crowded | 4-6 neighbours, dense background, membranes in 60 % of boxes; 7n4y free and on a membrane | 5tqq |

Per domain and feature set (raw-voxel PCA(32), the model, the model after ``adapt`` with each method, and the
method's candidate: the best round by silhouette, whether the guard kept it or not):
k-means V-measure at the true k (L2-normalised features), the best V over k = 2..15, a linear probe (5-fold
logistic regression), and whether the rare class comes out as its own cluster (a cluster holding at least half
of the rare picks, at least half of it rare) under each label-free rule of ``cluster.RARE_RULES``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "structures"
EXTRA, MAPS = SHARED / "maps_10A_extra", SHARED / "maps_10A"
PER_CLASS, RARE_COUNT = 90, 12
COMMON = [*(EXTRA / f"{n}.mrc" for n in ("2uv8", "6utj", "6pxm", "7n4y")), MAPS / "1bxn.mrc", MAPS / "4cr2.mrc"]
DOMAINS = {
    "strong_ctf": ([str(p) for p in COMMON], "6pxm"),
    "denoised": ([str(p) for p in COMMON], "2uv8"),
    "phase_plate": ([str(p) for p in COMMON], "6utj"),
    "crowded": (
        [
            str(EXTRA / "7n4y.mrc"),
            str(EXTRA / "7n4y.mrc") + "@membrane",
            str(EXTRA / "2uv8.mrc"),
            str(EXTRA / "6pxm.mrc"),
            "membrane:" + str(SHARED / "membrane_10A" / "5tqq.mrc"),
            str(MAPS / "1bxn.mrc"),
        ],
        "5tqq",
    ),
}


def domain_data(name: str, folder: Path, seed: int) -> tuple[np.ndarray, np.ndarray, dict, int]:
    """(volumes, labels, class names, rare label) of a domain, the rare class cut to RARE_COUNT."""
    from deepfinder_unsup.io.dataset import read_dataset

    path = folder / f"{name}.h5"
    specs, rare_name = DOMAINS[name]
    if not path.exists():
        from deepfinder_unsup.simulate.config import SimConfig
        from deepfinder_unsup.simulate.dataset import write_simulated_dataset
        from deepfinder_unsup.simulate.structures import load_structures

        config = SimConfig.from_file(HERE / "configs" / f"domain_{name}.json")
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        write_simulated_dataset(path, load_structures(specs, config.voxel_size), PER_CLASS, config, seed, n_workers=1)
        print(f"simulated {path} in {time.time() - t0:.0f} s", flush=True)
    ds = read_dataset(path)
    rare = next(label for label, n in ds.class_names.items() if n == rare_name)
    rng = np.random.default_rng(seed)
    keep_rare = rng.choice(np.flatnonzero(ds.labels == rare), RARE_COUNT, replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(ds.labels != rare), keep_rare]))
    return ds.subtomograms[keep], ds.labels[keep], ds.class_names, int(rare)


def score(features: np.ndarray, truth: np.ndarray, rare: int) -> dict:
    """V at the true k, best V over k, the linear probe, and the rare class found under each rule."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import v_measure_score
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepfinder_unsup.cluster import RARE_RULES, normalise_features, rare_class_found

    unit = normalise_features(features.astype(np.float64))
    k = len(np.unique(truth))
    v_by_k = {kk: v_measure_score(truth, KMeans(kk, n_init=4, random_state=0).fit_predict(unit)) for kk in range(2, 16)}
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    out = {
        "v_true_k": v_by_k[k],
        "v_best": max(v_by_k.values()),
        "k_best": max(v_by_k, key=v_by_k.get),
        "linear_probe": float(cross_val_score(probe, features, truth, cv=5).mean()),
    }
    for rule, fn in RARE_RULES.items():
        labels = fn(unit)
        out[f"rare_found_{rule}"] = bool(rare_class_found(labels, truth == rare))
        out[f"n_clusters_{rule}"] = int(len(set(labels) - {-1}))
    return {key: (round(v, 4) if isinstance(v, float) else v) for key, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general", help="model file or shipped name")
    parser.add_argument("--methods", nargs="*", default=["pseudolabel"], help="adapt methods to run (none: skip)")
    parser.add_argument("--domains", nargs="*", default=list(DOMAINS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--k", type=int, help="clusters for adapt's pseudo-labels and score (default: label-free)")
    parser.add_argument("--data", default="benchmarks/data/domains", help="simulated domains (made if absent)")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument(
        "--tta", action="store_true", help="also score the model and each candidate with test-time augmentation"
    )
    parser.add_argument("--precision", default="float32", help="adapt's arithmetic: float32, bfloat16 or auto")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    from sklearn.decomposition import PCA

    from deepfinder_unsup._quiet import import_tensorflow_quietly
    from deepfinder_unsup.volume import normalise

    import_tensorflow_quietly()
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.embed import Embedder, resolve_model_path

    results: dict = {
        "model": str(args.model),
        "rounds": args.rounds,
        "steps": args.steps,
        "k": args.k,
        "precision": args.precision,
        "domains": {},
    }
    work = Path(tempfile.mkdtemp(prefix="dfu_adapt_"))
    for name in args.domains:
        vols, truth, names, rare = domain_data(name, Path(args.data), args.seed)
        row: dict = {"n": int(len(truth)), "k": int(len(np.unique(truth))), "rare": names[rare]}
        flat = normalise(vols).reshape(len(vols), -1)
        row["pca32"] = score(PCA(32, random_state=0).fit_transform(flat), truth, rare)
        print(name, "pca32", row["pca32"], flush=True)
        row["model"] = score(Embedder(args.model, tta=False).fit().transform(vols), truth, rare)
        print(name, "model", row["model"], flush=True)
        if args.tta:
            row["model_tta"] = score(Embedder(args.model, tta=True).fit().transform(vols), truth, rare)
            print(name, "model_tta", row["model_tta"], flush=True)
        for method in args.methods:
            t0 = time.time()
            out = work / f"{name}_{method}.keras"
            report = adapt(
                resolve_model_path(args.model),
                vols,
                out,
                method,
                args.rounds,
                args.steps,
                k=args.k,
                seed=args.seed,
                guard=False,  # the candidate is scored too: what the guard kept or refused
                precision=args.precision,
            )
            candidate = score(Embedder(out).fit().transform(vols), truth, rare)
            row[f"{method}_candidate"] = candidate
            if args.tta:
                row[f"{method}_candidate_tta"] = score(Embedder(out, tta=True).fit().transform(vols), truth, rare)
            row[method] = dict(candidate if report.guard_passed else row["model"])  # what adapt writes
            row[method].update(
                kept="adapted" if report.guard_passed else "input",
                silhouette_before=round(report.score_before, 4),
                silhouette_after=round(report.score_after, 4),
                stability_before=round(report.stability_before, 4),
                stability_after=round(report.stability_after, 4),
                k=report.k,
                silhouette_over_k_before=report.silhouette_over_k_before,
                rounds=report.rounds,
                seconds=round(time.time() - t0, 1),
            )
            print(name, method, row[method], flush=True)
        results["domains"][name] = row
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))
    summary = {}
    extra = ["model_tta"] if args.tta else []
    candidates = [f"{m}_candidate{t}" for m in args.methods for t in ["", *(["_tta"] if args.tta else [])]]
    for feats in ["pca32", "model", *extra, *args.methods, *candidates]:
        rows = [r[feats] for r in results["domains"].values() if feats in r]
        summary[feats] = {
            "mean_v_best": round(float(np.mean([r["v_best"] for r in rows])), 4),
            "mean_v_true_k": round(float(np.mean([r["v_true_k"] for r in rows])), 4),
            "mean_probe": round(float(np.mean([r["linear_probe"] for r in rows])), 4),
            **{
                f"rare_found_{rule}": int(sum(r[f"rare_found_{rule}"] for r in rows))
                for rule in [k[len("rare_found_") :] for k in rows[0] if k.startswith("rare_found_")]
            },
        }
    results["summary"] = summary
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
