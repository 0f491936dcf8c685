"""Which label-free guard should ``adapt`` use? Every round of an adaptation scored against the labels (#13)

    python benchmarks/adapt_guard_study.py --model general --method neighbours --rounds 4 --steps 40 \
        --precision bfloat16 --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 --domains --out OUT.json

``adapt`` keeps its best round by a label-free score and writes it only when that score beats the input
model's (and the clustering's stability under resampling does not fall by more than 0.02). Session 8 saw the
silhouette at the label-free k refuse a real gain (the crowded domain, k = 2). Here each round's features are
scored both ways, label-free (the silhouette at the label-free k, the mean silhouette over the k range, the
stability at the label-free k and averaged over the k range) and with the labels (the adaptation protocol's
``score``: V at the true k, best V, probe, rare class), so each guard rule's choice can be read off: which
round it keeps and what that costs or gains. A rule is chosen on the design sets (``simulate`` outputs), then
read on the four domains. ``--save-features DIR`` keeps every round's features, so that a new rule can be
scored without adapting again (``--from-features DIR``, the label-free k chosen by today's ``select_k``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

TOLERANCE = 0.02  # adapt.STABILITY_TOLERANCE
# a guard rule: (the score whose best round is kept when it beats the input's, the stability that must hold)
RULES = {
    "silhouette": ("silhouette", "stability"),
    "silhouette_over_k": ("silhouette_over_k", "stability"),
    "silhouette+stability_over_k": ("silhouette", "stability_over_k"),
    "silhouette_over_k+stability_over_k": ("silhouette_over_k", "stability_over_k"),
}


def stability_over_k(features: np.ndarray, ks: range, seed: int) -> float:
    """The clustering's stability under resampling averaged over the k range, not at one k: at a label-free k of
    2 the input's partition is trivially stable, and any adaptation that breaks it up looks worse."""
    from deepfinder_unsup.cluster import stability

    return float(np.mean([stability(features, k, seed, pairs=3) for k in ks]))


# the same scores, but the best round among those whose stability holds (not only the best round, checked)
STABLE_RULES = {"silhouette among stable rounds": ("silhouette", "stability")}


def rule_outcome(rows: list[dict], rule: str) -> dict:
    """What ``adapt`` would write under ``rule``: the round with the best label-free score, kept when the score
    beats round 0's (the input) and the stability holds; its V against the input's. A ``STABLE_RULES`` rule
    first drops the rounds whose stability fell by more than the tolerance, then takes the best of the rest."""
    score_key, stability_key = RULES.get(rule) or STABLE_RULES[rule]
    candidates = rows[1:]
    if rule in STABLE_RULES:
        holds = [r for r in candidates if r[stability_key] >= rows[0][stability_key] - TOLERANCE]
        candidates = holds or [rows[0]]
    best = max(candidates, key=lambda r: r[score_key])
    kept = best[score_key] > rows[0][score_key] and best[stability_key] >= rows[0][stability_key] - TOLERANCE
    chosen = best if kept else rows[0]
    return {
        "round": chosen["round"],
        "v_true_k": chosen["v_true_k"],
        "v_best": chosen["v_best"],
        "delta_v_best": round(chosen["v_best"] - rows[0]["v_best"], 4),
        "delta_v_true_k": round(chosen["v_true_k"] - rows[0]["v_true_k"], 4),
    }


def study(name: str, vols: np.ndarray, truth: np.ndarray, rare: int | None, args, work: Path) -> dict:
    """Adapt on ``vols`` (unguarded), scoring the input and every round."""
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder, resolve_model_path

    rounds: list[tuple[int, np.ndarray]] = []
    report = adapt(
        resolve_model_path(args.model),
        vols,
        work / f"{name}.keras",
        args.method,
        args.rounds,
        args.steps,
        seed=args.seed,
        guard=False,
        precision=args.precision,
        learning_rate=args.learning_rate,
        on_round=lambda r, f: rounds.append((r, f)),
        tta=args.tta,
        neighbours=args.neighbours,
        noise=args.noise,
        one_way_weight=args.one_way_weight,
        dispersion=args.dispersion,
        anchor_weight=args.anchor_weight,
        freeze_convs=args.freeze_convs,
        augmentation=args.augmentation,
    )
    before = normalise_features(Embedder(args.model, tta=args.tta).fit().transform(vols).astype(np.float64))
    rounds = [(0, before), *rounds]
    if args.save_features:
        Path(args.save_features).mkdir(parents=True, exist_ok=True)
        for r, feats in rounds:
            np.savez(Path(args.save_features) / f"{name}_round{r}.npz", features=feats, truth=truth)
    return score_rounds(name, rounds, truth, rare, report.k, args.seed)


def restudy(name: str, folder: Path, rare: int | None, seed: int) -> dict:
    """The same scores from the features ``--save-features`` kept, the k chosen again by today's ``select_k`` on
    the input's features (as ``adapt`` does): a new guard or k rule scored without adapting again."""
    from deepfinder_unsup.cluster import select_k, sweep_k

    files = sorted(folder.glob(f"{name}_round*.npz"), key=lambda f: int(f.stem.rsplit("round", 1)[1]))
    rounds = [(int(f.stem.rsplit("round", 1)[1]), np.load(f)["features"]) for f in files]
    truth = np.load(files[0])["truth"]
    per_k, _ = sweep_k(rounds[0][1], range(2, min(16, len(truth) // 5)), seed=seed)
    return score_rounds(name, rounds, truth, rare, select_k(per_k), seed)


def score_rounds(name: str, rounds: list, truth: np.ndarray, rare: int | None, k: int, seed: int) -> dict:
    """Label-free scores at ``k`` and over the k range, and the labelled scores, of every round's features."""
    from adaptation_protocol import score

    from deepfinder_unsup.adapt import label_free_score, neighbourhood_overlap, silhouette_over_k
    from deepfinder_unsup.cluster import stability

    ks = range(2, min(16, len(truth) // 5))
    rows = []
    for r, feats in rounds:
        row = {
            "round": r,
            "silhouette": round(label_free_score(feats, k, seed)[0], 4),
            "silhouette_over_k": round(silhouette_over_k(feats, ks, seed), 4),
            "stability": round(stability(feats, k, seed), 4),
            "stability_over_k": round(stability_over_k(feats, ks, seed), 4),
            "neighbourhood_kept": round(neighbourhood_overlap(rounds[0][1], feats), 4),
            **score(feats, truth, rare if rare is not None else -1),
        }
        rows.append(row)
        print(name, row, flush=True)
    return {"k": k, "rounds": rows, **{rule: rule_outcome(rows, rule) for rule in {**RULES, **STABLE_RULES}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general")
    parser.add_argument("--method", default="neighbours")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--design", nargs="*", default=[], help="simulated data sets to choose on")
    parser.add_argument(
        "--domains", nargs="*", default=None, help="also the adaptation domains named (all four when none is named)"
    )
    parser.add_argument("--data", default="benchmarks/data/domains")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--tta", action="store_true", help="adapt --tta: neighbours and scores on four views")
    parser.add_argument("--neighbours", type=int, help="method neighbours: AaD's K (default: adapt's, 30)")
    parser.add_argument("--noise", type=float, default=0.0, help="own-spectrum noise (adapt --noise)")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="adapt's Adam rate (its default 5e-5)")
    parser.add_argument("--dispersion", type=float, default=1.0, help="AaD's lambda (adapt's default 1)")
    parser.add_argument("--anchor-weight", type=float, default=1.0, help="method anchored: adapt's anchor weight")
    parser.add_argument("--freeze-convs", type=int, default=0, help="adapt --freeze-convs (0: train every layer)")
    parser.add_argument("--augmentation", default="flip", help="adapt's augmentation: flip (default) or views")
    parser.add_argument("--one-way-weight", type=float, default=1.0, help="adapt --one-way-weight (1: AaD)")
    parser.add_argument("--save-features", help="folder for every round's unit features (to score other rules later)")
    parser.add_argument("--from-features", help="score the features a --save-features run kept; no adapting")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.extract import load_dataset_subtomograms
    from deepfinder_unsup.io.dataset import read_dataset

    work = Path(tempfile.mkdtemp(prefix="dfu_guard_"))
    results: dict = {
        key: getattr(args, key)
        for key in (
            "model",
            "method",
            "rounds",
            "steps",
            "precision",
            "tta",
            "neighbours",
            "noise",
            "one_way_weight",
            "learning_rate",
            "dispersion",
            "anchor_weight",
            "freeze_convs",
            "augmentation",
        )
    }
    results.update(design={}, domains={})
    saved = Path(args.from_features) if args.from_features else None
    for path in args.design:
        name = Path(path).parent.name
        if saved:
            results["design"][path] = restudy(name, saved, None, args.seed)
        else:
            vols, _ = load_dataset_subtomograms(path, 40, 10.0)
            results["design"][path] = study(name, vols, read_dataset(path).labels, None, args, work)
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.domains is not None:
        from adaptation_protocol import DOMAINS, domain_data

        unknown = set(args.domains) - set(DOMAINS)
        if unknown:
            parser.error(f"unknown domains {sorted(unknown)}; choose from {', '.join(DOMAINS)}")
        for name in args.domains or DOMAINS:
            vols, truth, _, rare = domain_data(name, Path(args.data), args.seed)
            results["domains"][name] = (
                restudy(name, saved, rare, args.seed) if saved else study(name, vols, truth, rare, args, work)
            )
            Path(args.out).write_text(json.dumps(results, indent=1))
    for part in ("design", "domains"):
        if results[part]:
            results[f"mean_{part}"] = {
                rule: {
                    s: round(float(np.mean([r[rule][s] for r in results[part].values()])), 4)
                    for s in ("delta_v_best", "delta_v_true_k")
                }
                for rule in {**RULES, **STABLE_RULES}
            }
    print(json.dumps({k: v for k, v in results.items() if k.startswith("mean_")}, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
