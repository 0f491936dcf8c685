"""How far a model's own neighbourhoods move between one view of each pick and the mean of four (#13)

    python benchmarks/view_neighbourhoods.py --model general --sets runs/rare/dataset.h5 crowded strong_ctf \
        --out OUT.json

The share of each pick's 30 nearest neighbours (cosine) that its one-view features (``embed``) and its four-view
features (``embed --tta``: the mean unit embedding of the wedge-symmetric views) have in common: how much the
neighbourhoods move under a change the features should ignore. ``adapt`` computes the same share for its input
model (the card's ``neighbourhood_between_views``) and warns when the adapted model kept fewer of the input's
neighbourhoods than ``adapt.NEIGHBOURHOOD_WARNING`` times it. A set is a simulated ``dataset.h5`` or the name of
a domain of ``adaptation_protocol.py`` (made if absent). No labels are used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general", help="model file or shipped name")
    parser.add_argument("--sets", nargs="+", required=True, help="dataset.h5 files or adaptation domain names")
    parser.add_argument("--data", default="benchmarks/data/domains", help="simulated domains (made if absent)")
    parser.add_argument("--seed", type=int, default=23, help="the domains' seed (adaptation_protocol's default)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from adaptation_protocol import domain_data

    from deepfinder_unsup.adapt import neighbourhood_overlap
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.extract import load_dataset_subtomograms

    results: dict = {"model": args.model, "between_views": {}}
    for name in args.sets:
        if name.endswith(".h5"):
            vols, _ = load_dataset_subtomograms(name, 40, 10.0)
        else:
            vols = domain_data(name, Path(args.data), args.seed)[0]
        one = Embedder(args.model, tta=False).fit().transform(vols)
        four = Embedder(args.model, tta=True).fit().transform(vols)
        results["between_views"][name] = round(neighbourhood_overlap(four, one), 4)
        print(name, results["between_views"][name], flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
