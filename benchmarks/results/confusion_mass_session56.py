"""How close in mass are the protocol's confusions? (session 56, #9)

    python benchmarks/results/confusion_mass_session56.py [MODEL]   # default: the shipped `general`

Needs the model's one-view features of benchmarks/data/protocol.h5 in runs/cache (written by
``benchmarks/paired_bootstrap.py --cache runs/cache``). For each particle of a procedural structure whose nearest
neighbour (cosine, L2-normalised features) is another procedural structure, the |ln mass ratio| of the two
structures, against random pairs of the protocol's 200: the motivation of ``train --fresh-mass-band``.
Session 56, the shipped `general`: 2,680 wrong nearest neighbours of 4,000; |ln ratio| quartiles 0.10 / 0.33 /
0.64 (random pairs 0.45 / 0.97 / 1.67); 53 % of the confusions within ln 0.35, 20 % of random pairs; 375 (14 %)
of the confusions are the structure's mirror image (seeds 4 mod 5 mirror the seed before; 40 pairs in the 200),
where one class in 199 would be chance.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

from deepfinder_unsup.cluster import normalise_features
from deepfinder_unsup.embed import resolve_model_path
from deepfinder_unsup.io.dataset import read_dataset
from deepfinder_unsup.simulate.procedural import MIRROR_PERIOD, procedural_molecule

DATA = Path("benchmarks/data/protocol.h5")


def cached_one_view_features(model: Path, keep: np.ndarray) -> np.ndarray:
    """The features paired_bootstrap.py cached for this model, data file and selection (float32, one view)."""
    stat = DATA.stat()
    key = [
        hashlib.sha256(model.read_bytes()).hexdigest(),
        str(DATA.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        "float32",
        False,
        hashlib.sha256(np.packbits(keep).tobytes()).hexdigest(),
    ]
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    return np.load(f"runs/cache/{digest}.npy")


def mirror_images(a: int, b: int) -> bool:
    """Whether seeds ``a`` and ``b`` are one structure and its mirror image (seed 4 mod 5 mirrors seed - 1)."""
    low, high = sorted((a, b))
    return high % MIRROR_PERIOD == MIRROR_PERIOD - 1 and high - 1 == low


def main() -> None:
    data = read_dataset(DATA)
    truth = np.asarray(data.labels)
    model = Path(resolve_model_path(sys.argv[1] if len(sys.argv) > 1 else "general"))
    features = normalise_features(cached_one_view_features(model, np.ones(len(truth), bool)).astype(np.float64))
    seeds = {
        label: int(m.group(1)) for label, name in data.class_names.items() if (m := re.fullmatch(r"proc(\d+)", name))
    }
    mass = {label: procedural_molecule(seed).mass_kda for label, seed in seeds.items()}
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(1)
    wrong = [
        i for i in range(len(truth)) if truth[i] in mass and truth[nearest[i]] in mass and truth[nearest[i]] != truth[i]
    ]
    confused = np.array([abs(np.log(mass[truth[i]] / mass[truth[nearest[i]]])) for i in wrong])
    pairs = np.random.default_rng(0).choice(list(mass), (5000, 2))
    random = np.array([abs(np.log(mass[a] / mass[b])) for a, b in pairs if a != b])
    print(f"wrong nearest neighbours: {len(wrong)} of {sum(label in mass for label in truth)}")
    print("|ln ratio| quartiles: confusions", np.percentile(confused, [25, 50, 75]).round(2), "random pairs",
          np.percentile(random, [25, 50, 75]).round(2))  # fmt: skip
    mirrors = sum(mirror_images(seeds[truth[i]], seeds[truth[nearest[i]]]) for i in wrong)
    print(f"mirror images: {mirrors} of the wrong nearest neighbours")
    print(f"within ln 0.35: confusions {(confused <= 0.35).mean():.2f}, random pairs {(random <= 0.35).mean():.2f}")


if __name__ == "__main__":
    main()
