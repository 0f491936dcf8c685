"""How long ``adapt`` takes on 2,000 picks (issue #13: under 30 minutes on 2 cores), with default settings.

    python benchmarks/adapt_speed.py --method pseudolabel --out adapt_speed.json
    python benchmarks/adapt_speed.py --method neighbours --tta [--freeze-convs 4] --out adapt_speed.json

The picks are the four cached domains of ``adaptation_protocol.py`` together (2,208 sub-tomograms, made on first
use), cut to ``--picks``. Reported beside the wall time, measured in the same run: one plain (float32)
embedding pass over the picks (so the time is also a ratio that holds across processors), the cores, the CPU's
bf16 support and the precision ``adapt`` used. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from adaptation_protocol import DOMAINS, domain_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general")
    parser.add_argument("--method", default="pseudolabel")
    parser.add_argument("--picks", type=int, default=2000)
    parser.add_argument("--precision", default="auto", help="adapt's arithmetic (its default: auto)")
    parser.add_argument("--data", default="benchmarks/data/domains")
    parser.add_argument("--tta", action="store_true", help="adapt --tta (features from four views)")
    parser.add_argument("--freeze-convs", type=int, default=0, help="adapt(..., freeze_convs=N): the front fixed")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.adapt import adapt
    from deepfinder_unsup.embed import Embedder, cpu_has_bf16, resolve_model_path

    vols = np.concatenate([domain_data(name, Path(args.data), 23)[0] for name in DOMAINS])[: args.picks]
    t0 = time.time()
    Embedder(args.model, tta=False).fit().transform(vols)
    embed_seconds = time.time() - t0
    out = Path(tempfile.mkdtemp(prefix="dfu_adapt_speed_")) / "adapted.keras"
    t0 = time.time()
    report = adapt(
        resolve_model_path(args.model),
        vols,
        out,
        args.method,
        precision=args.precision,
        tta=args.tta,
        freeze_convs=args.freeze_convs,
    )
    seconds = time.time() - t0
    result = {
        "picks": int(len(vols)),
        "method": args.method,
        "tta": args.tta,
        "freeze_convs": args.freeze_convs,
        "precision": report.precision,
        "rounds": len(report.rounds),
        "kept": report.kept,
        "adapt_seconds": round(seconds, 1),
        "adapt_minutes": round(seconds / 60, 1),
        "one_embedding_pass_seconds": round(embed_seconds, 1),
        "adapt_in_embedding_passes": round(seconds / embed_seconds, 1),
        "cores": os.cpu_count(),
        "cpu_bf16": cpu_has_bf16(),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
