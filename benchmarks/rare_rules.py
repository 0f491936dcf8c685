"""Which label-free rule gives a 2 % structure its own cluster (issue #13): design sets, then the protocol.

    python benchmarks/rare_rules.py --model general --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 \
        --domains --cache runs/feats --out rare_rules.json [--tta]

Design sets (any ``simulate`` output; the rule and its settings are chosen on these): each class in turn is cut
to 2 % of the picks (the other classes whole), and every rule of ``cluster.RARE_RULES`` runs on the
L2-normalised features. ``--domains`` then scores the same rules, unchanged, on the four domains of
``adaptation_protocol.py`` (the test: nothing is chosen on them). Per set and rule: how often the rare class
comes out as its own cluster (``cluster.rare_class_found``), the mean number of clusters, and the V-measure of
the rule's labels (picks left unassigned count as one more cluster).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RARE_FRACTION = 0.02


def rare_trials(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(rare class, kept indices) for every class cut to RARE_FRACTION of the picks, at least 3."""
    trials = []
    for c in np.unique(labels):
        rng = np.random.default_rng(int(c))
        others = np.flatnonzero(labels != c)
        n_rare = max(3, round(RARE_FRACTION * len(others) / (1 - RARE_FRACTION)))
        chosen = rng.choice(np.flatnonzero(labels == c), min(n_rare, int(np.sum(labels == c))), replace=False)
        trials.append((int(c), np.sort(np.concatenate([others, chosen]))))
    return trials


def score_rules(features: np.ndarray, truth: np.ndarray, trials: list[tuple[int, np.ndarray]]) -> dict:
    """Per rule: rare classes found, mean clusters, mean V over the trials."""
    from sklearn.metrics import v_measure_score

    from deepfinder_unsup.cluster import RARE_RULES, normalise_features, rare_class_found

    out = {}
    for rule, fn in RARE_RULES.items():
        found, n_clusters, v = [], [], []
        for rare, keep in trials:
            labels = fn(normalise_features(features[keep].astype(np.float64)))
            found.append(bool(rare_class_found(labels, truth[keep] == rare)))
            n_clusters.append(len(set(labels.tolist()) - {-1}))
            v.append(v_measure_score(truth[keep], labels))
        out[rule] = {
            "found": int(sum(found)),
            "trials": len(trials),
            "found_per_trial": found,
            "mean_clusters": round(float(np.mean(n_clusters)), 2),
            "mean_v_measure": round(float(np.mean(v)), 4),
        }
    return out


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a study chosen on design sets and scored on the protocol's domains (shared by scripts)."""
    parser.add_argument("--model", default="general", help="model file or shipped name")
    parser.add_argument("--design", nargs="*", default=[], help="simulated data sets to choose on")
    parser.add_argument("--domains", action="store_true", help="also score the four adaptation domains")
    parser.add_argument("--data", default=str(HERE / "data" / "domains"), help="cache of the domains")
    parser.add_argument("--seed", type=int, default=23, help="the domains' seed (as adaptation_protocol.py)")
    parser.add_argument("--tta", action="store_true", help="embed with the four wedge-symmetric views")
    parser.add_argument("--out", required=True, help="JSON results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    parser.add_argument("--cache", type=Path, help="folder of cached features (NAME[_tta].MODELHASH.npz)")
    args = parser.parse_args()

    from feature_normalisation import cached_features

    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.io.dataset import read_dataset

    embedder = Embedder(args.model, tta=args.tta)
    results = {"model": args.model, "tta": args.tta, "rare_fraction": RARE_FRACTION, "design": {}, "domains": {}}
    for path in args.design:
        data = read_dataset(path)
        name = Path(path).parent.name
        features = cached_features(args.cache, name, args.tta, embedder, data.subtomograms, data.voxel_size)
        results["design"][path] = score_rules(features, data.labels, rare_trials(data.labels))
        print(path, {r: (s["found"], s["trials"], s["mean_v_measure"]) for r, s in results["design"][path].items()})
    if args.domains:
        from adaptation_protocol import DOMAINS, domain_data

        for name in DOMAINS:
            volumes, truth, _, rare = domain_data(name, Path(args.data), args.seed)
            features = cached_features(args.cache, name, args.tta, embedder, volumes)
            results["domains"][name] = score_rules(features, truth, [(rare, np.arange(len(truth)))])
            print(name, {r: (s["found"], s["mean_v_measure"]) for r, s in results["domains"][name].items()})
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
