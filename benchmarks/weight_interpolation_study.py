"""Between the input and the adapted weights: does a weight-space interpolation cluster better than either? (#13)

    python benchmarks/weight_interpolation_study.py --model general --design runs/rare/dataset.h5 \
        --alphas 0 0.25 0.5 0.75 1 --out OUT.json

WiSE-FT (Wortsman et al. 2022) found that a model fine-tuned on a new distribution and its starting point,
averaged weight by weight as (1 - alpha) w_input + alpha w_adapted, is often better on shifted data than either.
``adapt`` keeps either the input or its best round; this scores the line between them. ``adapt`` runs once,
unguarded (the default ``neighbours``, ``--tta``, 3 x 100 steps, bf16), the interpolated models are embedded as
the adapted one is (four views), labels only to score: V at the true k, the best V over k = 2..15 and the probe
(adaptation_protocol.score), with the label-free silhouette at the input's label-free k and the stability that
``adapt``'s guard reads, so a rule that picks alpha without labels can be read off. Design sets choose; the four
domains (``--domains``) are read only for what the design sets chose.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def interpolated(input_weights: list, adapted_weights: list, alpha: float) -> list:
    """(1 - alpha) input + alpha adapted, array by array (integer arrays, e.g. counters, from the adapted)."""
    out = []
    for a, b in zip(input_weights, adapted_weights, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        out.append(((1 - alpha) * a + alpha * b).astype(b.dtype) if np.issubdtype(b.dtype, np.floating) else b)
    return out


def study(name: str, vols: np.ndarray, truth: np.ndarray, rare: int, args, work: Path) -> dict:
    from adaptation_protocol import score

    from deepfinder_unsup.adapt import adapt, label_free_score
    from deepfinder_unsup.cluster import normalise_features, stability
    from deepfinder_unsup.embed import Embedder, resolve_model_path
    from deepfinder_unsup.model.card import load_model, save_model

    adapted_path = work / f"{name}_adapted.keras"
    report = adapt(
        resolve_model_path(args.model),
        vols,
        adapted_path,
        "neighbours",
        args.rounds,
        args.steps,
        seed=args.seed,
        guard=False,
        precision="bfloat16",
        tta=True,
    )
    input_model, _ = load_model(resolve_model_path(args.model))
    adapted_model, card = load_model(adapted_path)
    w_in, w_ad = input_model.get_weights(), adapted_model.get_weights()
    rows = []
    for alpha in args.alphas:
        path = work / f"{name}_alpha{alpha:g}.keras"
        adapted_model.set_weights(interpolated(w_in, w_ad, alpha))
        save_model(adapted_model, path, card, overwrite=True)
        feats = normalise_features(Embedder(path, precision="bfloat16", tta=True).fit().transform(vols).astype(float))
        row = {
            "alpha": alpha,
            "silhouette": round(label_free_score(feats, report.k, args.seed)[0], 4),
            "stability": round(stability(feats, report.k, args.seed), 4),
            **score(feats, truth, rare),
        }
        rows.append(row)
        print(name, row, flush=True)
    kept = max(report.rounds, key=lambda r: r["silhouette"]) if report.rounds else None
    return {"k": report.k, "kept_round": kept, "alphas": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general")
    parser.add_argument("--design", nargs="*", default=[])
    parser.add_argument("--domains", nargs="*")
    parser.add_argument("--data", default="benchmarks/data/domains")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.extract import load_dataset_subtomograms
    from deepfinder_unsup.io.dataset import read_dataset

    work = Path(tempfile.mkdtemp(prefix="dfu_wise_"))
    results: dict = {"model": args.model, "rounds": args.rounds, "steps": args.steps, "design": {}, "domains": {}}
    for path in args.design:
        vols, _ = load_dataset_subtomograms(path, 40, 10.0)
        results["design"][path] = study(Path(path).parent.name, vols, read_dataset(path).labels, -1, args, work)
        args.out.write_text(json.dumps(results, indent=1))
    if args.domains is not None:
        from adaptation_protocol import DOMAINS, domain_data

        for name in args.domains or DOMAINS:
            vols, truth, _, rare = domain_data(name, Path(args.data), args.seed)
            results["domains"][name] = study(name, vols, truth, rare, args, work)
            args.out.write_text(json.dumps(results, indent=1))
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
