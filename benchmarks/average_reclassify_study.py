"""Does a pose-aware step after clustering separate the domains better than the features alone? (#13, study)

Labels only to score. Per domain of ``adaptation_protocol.py``: the model's features (one view, or the four-view
``--tta``; or the features an adapted model wrote, ``--features``), k-means at k on the unit features, then
multi-reference classification (the cryo-ET classification way, as RELION's 3D classification without its
probabilities): each cluster's members are averaged (reference-free, ``average.subtomogram_average``), every pick
is aligned to every average over a rotation grid and all shifts (binned, wedge-constrained correlation,
``average.align``) and goes to the average it matches best; averages are rebuilt from the new members in the
poses just found; repeated ``--rounds`` times. Reports V at k after each round, at the true k and at the k
picked by ``cluster``'s label-free rule.

    python benchmarks/average_reclassify_study.py --domains strong_ctf crowded --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def tilt_range_of(domain: str) -> tuple[float, float]:
    """The domain's tilt range from its config (what a user gives ``average --tilt-range``)."""
    cfg = json.loads((HERE / "configs" / f"domain_{domain}.json").read_text())
    return float(cfg.get("tilt_min", -60)), float(cfg.get("tilt_max", 60))


def reclassify(
    vols, labels, tilt_range, rounds: int, n_rotations: int, bin_factor: int, seed: int, zscore: bool = False
) -> list:
    """Assignments after each round of multi-reference alignment (round 0: ``labels``); ``zscore``: each
    average's scores standardised over the picks before the best is taken (a large average correlates more
    with every pick)."""
    from deepfinder_unsup.average import (
        align,
        fourier_bin,
        rotation_grid,
        spherical_mask,
        subtomogram_average,
        wedge_mask,
        weighted_average,
    )

    box = vols.shape[-1]
    vols = (vols - vols.mean(axis=(1, 2, 3), keepdims=True)) / (vols.std(axis=(1, 2, 3), keepdims=True) + 1e-6)
    mask = spherical_mask(box, 0.4 * box)
    wedge = wedge_mask(box, tilt_range)
    small = box // bin_factor
    wedge_small = np.fft.ifftshift(wedge_mask(small, tilt_range))[..., : small // 2 + 1]
    binned_ft = np.fft.rfftn(fourier_bin(vols * mask, bin_factor), axes=(-3, -2, -1))
    grid = rotation_grid(n_rotations)
    out = [labels.copy()]
    refs = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) >= 4:
            res = subtomogram_average(
                vols[members],
                10.0,
                tilt_range=tilt_range,
                iterations=4,
                global_iterations=3,
                n_rotations=n_rotations,
                n_fine_rotations=4 * n_rotations,
                seed=seed,
            )
            refs[int(c)] = res.average
    for _ in range(rounds):
        ids = sorted(refs)
        scores = np.zeros((len(vols), len(ids)))
        poses = []
        for j, c in enumerate(ids):
            ref_small = fourier_bin(refs[c][None], bin_factor)[0]
            r, s, sc = align(binned_ft, ref_small, grid, wedge_small, box / 8 / bin_factor)
            scores[:, j] = sc
            poses.append((r, s * bin_factor))
        if zscore:
            scores = (scores - scores.mean(axis=0)) / (scores.std(axis=0) + 1e-12)
        best = scores.argmax(axis=1)
        assignment = np.array(ids)[best]
        out.append(assignment)
        refs = {}
        for j, c in enumerate(ids):
            members = np.flatnonzero(best == j)
            if len(members) >= 4:
                r, s = poses[j]
                refs[c] = weighted_average(vols[members], grid[r[members]], s[members], wedge, mask)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="general")
    p.add_argument("--domains", nargs="+", default=["strong_ctf", "denoised", "phase_plate", "crowded"])
    p.add_argument("--data", type=Path, default=HERE / "data" / "domains")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rotations", type=int, default=500)
    p.add_argument("--bin", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zscore", action="store_true", help="standardise each average's scores over the picks")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    from adaptation_protocol import domain_data
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder

    embedder = Embedder(args.model, precision="auto", tta=args.tta).fit()
    results = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "domains": {}}
    for domain in args.domains:
        t0 = time.time()
        vols, truth, _, _ = domain_data(domain, args.data, seed=0)
        unit = normalise_features(embedder.transform(vols).astype(np.float64))
        k = len(np.unique(truth))
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(unit)
        rounds = reclassify(
            vols, labels, tilt_range_of(domain), args.rounds, args.rotations, args.bin, args.seed, args.zscore
        )
        row = {"v_true_k": [round(float(v_measure_score(truth, a)), 4) for a in rounds], "seconds": 0}
        row["seconds"] = round(time.time() - t0)
        results["domains"][domain] = row
        print(domain, row, flush=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
