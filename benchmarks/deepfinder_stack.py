"""DeepFinder's own stack (cryoet-deepfinder 0.2.1, TensorFlow 2.13) against ours on the same encoder.

    python benchmarks/deepfinder_stack.py [--venv /tmp/df_stack_venv] [--batches 1 32 64]

Creates (once) a virtual environment with tensorflow-cpu 2.13.1 and cryoet-deepfinder 0.2.1 (its code only,
``--no-deps``: its pinned GUI dependencies are not needed to build the network), builds DeepFinder's
``my_model(40, 13)``, loads ../shared's SHREC'19 weights with DeepFinder's own ``load_weights``, cuts it at the
8th convolution (the encoder) and times inference on the same random inputs as this package's encoder, in
both processes one after the other. Prints sub-tomograms/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "deepfinder" / "weights" / "net_weights_FINAL.h5"

TIMER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    def rate(fn, batch, seconds=8.0):
        x = tf.constant(np.random.default_rng(0).standard_normal((batch, 40, 40, 40, 1)).astype("float32"))
        fn(x).numpy()
        n, t0 = 0, time.time()
        while time.time() - t0 < seconds:
            fn(x).numpy(); n += batch
        return n / (time.time() - t0)
""")

THEIRS = TIMER + textwrap.dedent("""
    from deepfinder.models import my_model
    net = my_model(40, 13)
    net.load_weights(sys.argv[1])
    convs = [l for l in net.layers if isinstance(l, tf.keras.layers.Conv3D)]
    enc = tf.keras.Model(net.input, convs[7].output)
    fn = tf.function(lambda x: enc(x, training=False))
    print(json.dumps({"tensorflow": tf.__version__,
                      "rates": {b: rate(fn, int(b)) for b in sys.argv[2].split(",")}}))
""")

OURS = TIMER + textwrap.dedent("""
    from deepfinder_unsup.model.deepfinder import build_encoder, load_deepfinder_weights
    enc = build_encoder(40)
    load_deepfinder_weights(enc, sys.argv[1])
    fn = tf.function(lambda x: enc(x, training=False), jit_compile=False)
    print(json.dumps({"tensorflow": tf.__version__,
                      "rates": {b: rate(fn, int(b)) for b in sys.argv[2].split(",")}}))
""")


def ensure_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        venv.create(path, with_pip=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "tensorflow-cpu==2.13.1",
                "numpy<1.25",
                "h5py",
                "lxml",
                "mrcfile",
                "scikit-learn",
                "scikit-image",
                "matplotlib",
                "openpyxl",
            ],
            check=True,
        )
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "cryoet-deepfinder==0.2.1"], check=True)
    return python


def run(python, code: str, batches: str) -> dict:
    out = subprocess.run(
        [str(python), "-c", code, str(WEIGHTS), batches],
        capture_output=True,
        text=True,
        check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/tmp/df_stack_venv")
    parser.add_argument("--batches", nargs="+", default=["1", "32", "64"])
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()
    python = ensure_venv(Path(args.venv))
    if args.setup_only:
        return
    batches = ",".join(args.batches)
    theirs = run(python, THEIRS, batches)
    ours = run(sys.executable, OURS, batches)
    rows = [
        {
            "batch": int(b),
            "deepfinder_per_s": round(theirs["rates"][b], 1),
            "ours_per_s": round(ours["rates"][b], 1),
            "ratio": round(ours["rates"][b] / theirs["rates"][b], 2),
        }
        for b in args.batches
    ]
    print(
        json.dumps(
            {"deepfinder_tensorflow": theirs["tensorflow"], "our_tensorflow": ours["tensorflow"], "rows": rows},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
