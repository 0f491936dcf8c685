"""Are embeddings the same bytes run after run, and with another number of TensorFlow threads (issue #12)?

    python benchmarks/embedding_determinism.py [--model general] [--threads 1 2]

Embeds 64 fixed random boxes twice per precision (float32, bfloat16) in one fresh process per thread count
(TensorFlow's intra-op threads are fixed at start-up), then compares: twice in one process, and across the
thread counts (largest absolute difference, relative to the largest embedding value).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PRECISIONS = ("float32", "bfloat16")


def embed_in_this_process(model: str, threads: int, out: Path) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from deepfinder_unsup.embed import Embedder

    x = np.random.default_rng(0).standard_normal((64, 40, 40, 40)).astype(np.float32)
    result = {}
    for precision in PRECISIONS:
        embedder = Embedder(model, precision=precision, tta=False)
        a, b = embedder.transform(x), embedder.transform(x)
        result[precision] = {"twice_identical": bool(np.array_equal(a, b))}
        np.save(out / f"{threads}_{precision}.npy", a)
    (out / f"{threads}.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child is not None:
        embed_in_this_process(args.model, args._child, Path(args._dir))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.threads:
            cmd = [sys.executable, __file__, "--model", args.model, "--_child", str(n), "--_dir", tmp]
            subprocess.run(cmd, check=True)
        report = {"model": args.model, "runs": {}, "across_threads": {}}
        for n in args.threads:
            report["runs"][n] = json.loads((Path(tmp) / f"{n}.json").read_text())
        for precision in PRECISIONS:
            ref = np.load(Path(tmp) / f"{args.threads[0]}_{precision}.npy")
            diffs = [np.abs(np.load(Path(tmp) / f"{n}_{precision}.npy") - ref).max() for n in args.threads[1:]]
            report["across_threads"][precision] = {
                "max_abs_difference": float(max(diffs, default=0.0)),
                "relative_to_max_value": float(max(diffs, default=0.0) / np.abs(ref).max()),
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
