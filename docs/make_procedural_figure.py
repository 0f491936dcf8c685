"""Figure and table of docs/simulation.md: the procedural pseudo-molecules and their distribution.

    python docs/make_procedural_figure.py [--first-seed 0] [--count 1000]

Top: projections along z of 36 molecules (seeds 0-35, 10 Å voxels) with symmetry, mass and diameter.
Bottom: histograms of mass, diameter and symmetry over ``count`` seeds. Prints the summary table.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepfinder_unsup.simulate.procedural import procedural_molecule, render_points  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "figures" / "procedural.png"))
    args = parser.parse_args()
    mols = [procedural_molecule(s) for s in range(args.first_seed, args.first_seed + args.count)]
    fig = plt.figure(figsize=(13, 12))
    for i, mol in enumerate(mols[:36]):
        ax = fig.add_subplot(8, 6, i + 1)
        proj = render_points(mol.points, 10.0).sum(axis=0)
        pad = max(0, 36 - proj.shape[0])
        proj = np.pad(proj, ((pad // 2, pad - pad // 2),) * 2)
        ax.imshow(proj, cmap="gray_r")
        ax.set_title(
            f"{mol.seed}: {mol.symmetry}{' (mirror)' if mol.mirrored else ''}\n"
            f"{mol.mass_kda:.0f} kDa, {mol.diameter_a / 10:.0f} nm",
            fontsize=7,
        )
        ax.axis("off")
    masses = np.array([m.mass_kda for m in mols])
    diam = np.array([m.diameter_a / 10 for m in mols])
    sym = Counter(
        "helix" if m.symmetry == "helix" else m.symmetry[0] if m.symmetry[0] in "CD" else m.symmetry for m in mols
    )
    ax = fig.add_subplot(4, 3, 10)
    ax.hist(np.log10(masses), bins=30)
    ax.set_xlabel("log10 mass (kDa)")
    ax = fig.add_subplot(4, 3, 11)
    ax.hist(diam, bins=30)
    ax.set_xlabel("diameter (nm)")
    ax = fig.add_subplot(4, 3, 12)
    ax.bar(list(sym), list(sym.values()))
    ax.set_xlabel("symmetry family")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    q = np.percentile
    print(f"{len(mols)} molecules (seeds {args.first_seed}-{args.first_seed + args.count - 1})")
    print(
        f"mass kDa: min {masses.min():.0f}, 10% {q(masses, 10):.0f}, median {np.median(masses):.0f}, "
        f"90% {q(masses, 90):.0f}, max {masses.max():.0f}"
    )
    print(
        f"diameter nm: min {diam.min():.1f}, 10% {q(diam, 10):.1f}, median {np.median(diam):.1f}, "
        f"90% {q(diam, 90):.1f}, max {diam.max():.1f}"
    )
    print("symmetry:", dict(sorted(sym.items())), f"; mirror images: {sum(m.mirrored for m in mols)}")


if __name__ == "__main__":
    main()
