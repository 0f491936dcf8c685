"""Does masking out a pick's surroundings (neighbours, membranes, background) help k-means? (issue #13)

    python benchmarks/context_mask.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 runs/monitor/dataset.h5 --domains \
        --out context_mask.json

Subtomogram averaging masks the particle; the network sees the whole 40-voxel box, neighbours included, and
the crowded domain (4-6 neighbours) clusters worst of the four. Each sub-tomogram, normalised, is multiplied
by a soft sphere (radius r voxels, linear 3-voxel edge) and the outside either left at zero or filled with
white noise of the outside's own spread (so the box's statistics stay those the network was trained on); then
embedded and scored like ``feature_normalisation.py`` (k-means on unit features, V at the true k and best V
over k = 2 .. 2 x true k). Chosen on the design sets, scored unchanged on the domains.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MASKS = (None, ("zero", 12), ("zero", 15), ("zero", 18), ("noise", 12), ("noise", 15), ("noise", 18))
EDGE = 3.0  # voxels of linear fall-off outside the radius


def soft_sphere(n: int, radius: float, edge: float = EDGE) -> np.ndarray:
    """1 inside ``radius`` of the box centre (n // 2), falling linearly to 0 over ``edge`` voxels."""
    c = n // 2
    z, y, x = np.ogrid[:n, :n, :n]
    distance = np.sqrt((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2)
    return np.clip((radius + edge - distance) / edge, 0, 1).astype(np.float32)


def masked(volumes: np.ndarray, fill: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Each volume normalised and masked; outside: zero, or white noise of the outside's standard deviation."""
    from deepfinder_unsup.volume import normalise

    mask = soft_sphere(volumes.shape[1], radius)
    out = normalise(volumes) * mask
    if fill == "noise":
        for i, v in enumerate(normalise(volumes)):
            spread = v[mask == 0].std()
            out[i] += rng.normal(0, spread, v.shape).astype(np.float32) * (1 - mask)
    return out


def study_sets(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``design:NAME`` and (``--domains``) ``domain:NAME`` -> (volumes, labels): the sets a study scores."""
    from deepfinder_unsup.io.dataset import read_dataset

    sets = {}
    for path in args.design:
        data = read_dataset(path)
        sets[f"design:{Path(path).parent.name}"] = (data.subtomograms, data.labels)
    if args.domains:
        from adaptation_protocol import DOMAINS, domain_data

        for name in DOMAINS:
            volumes, truth, _, _ = domain_data(name, Path(args.data), args.seed)
            sets[f"domain:{name}"] = (np.asarray(volumes, np.float32), truth)
    return sets


def summarise(results: dict) -> None:
    """Adds ``mean_design`` / ``mean_domain``: per variant, the mean V at the true k and best V over the sets."""
    for part in ("design", "domain"):
        names = [s for s in results["sets"] if s.startswith(part)]
        if names:
            results[f"mean_{part}"] = {
                key: {
                    m: round(float(np.mean([results["sets"][s][key][m] for s in names])), 4)
                    for m in ("v_true_k", "best_v")
                }
                for key in results["sets"][names[0]]
            }


def run_input_study(description: str, variants: dict) -> None:
    """The command line of a study of input transforms: ``variants`` maps a name to a function of (volumes, the
    study's sets) giving the transformed volumes (None: the input as it is); each set embedded once per variant,
    scored by ``feature_normalisation.score`` on unit features, the means per part added, all written to --out."""
    from feature_normalisation import score
    from rare_rules import add_set_arguments

    from deepfinder_unsup.embed import Embedder

    parser = argparse.ArgumentParser(description=description)
    add_set_arguments(parser)
    args = parser.parse_args()
    sets = study_sets(args)
    embedder = Embedder(args.model, tta=args.tta)
    results: dict = {"model": args.model, "tta": args.tta, "sets": {}}
    for set_name, (volumes, truth) in sets.items():
        for key, transform in variants.items():
            x = volumes if transform is None else transform(volumes, sets)
            results["sets"].setdefault(set_name, {})[key] = score(embedder.transform(x), truth)["l2"]
            print(set_name, key, results["sets"][set_name][key], flush=True)
    summarise(results)
    Path(args.out).write_text(json.dumps(results, indent=1))


def _mask_variant(spec):
    return None if spec is None else (lambda v, _: masked(v, spec[0], spec[1], np.random.default_rng(0)))


def main() -> None:
    variants = {"none" if m is None else f"{m[0]}{m[1]}": _mask_variant(m) for m in MASKS}
    run_input_study(__doc__.splitlines()[0], variants)


if __name__ == "__main__":
    main()
