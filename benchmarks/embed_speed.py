"""Embedding (and training-step) throughput of f_theta against the processor's measured peak.

    python benchmarks/embed_speed.py [--model PATH] [--batches 1 8 32 64 128] [--int8] [--train]
    python benchmarks/embed_speed.py --batches --train-freeze 0 2 4   # training steps, leading convolutions frozen

For each batch size: sub-tomograms/s through the embedding network (fp32, and bf16 mixed precision), the
FLOPs per sub-tomogram counted from the layers (2 x kernel volume x C_in x C_out x output voxels per
convolution, 2 x in x out per dense layer), the achieved GFLOP/s, and the peak of a single-precision matrix
multiply (4096^2, TensorFlow, same process) for comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from deepfinder_unsup._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import keras  # noqa: E402


def layer_flops(model) -> int:
    """Multiply-add FLOPs (x2) of the convolutions and dense layers for one input, every call of a layer counted
    (the zoom head applies the encoder's layers twice)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            k = int(np.prod(layer.kernel.shape))  # kd kh kw cin cout
            total += sum(2 * k * int(np.prod(shape[1:4])) for shape in output_shapes(layer))
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape)) * len(output_shapes(layer))
    return total


def output_shapes(layer) -> list[tuple]:
    """The output shape of each call of ``layer`` in the graph (Keras' ``layer.output`` refuses a shared layer)."""
    return [tuple(node.output_tensors[0].shape) for node in layer._inbound_nodes]


def matmul_peak_gflops(n: int = 4096, repeats: int = 10) -> float:
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda x, y: tf.matmul(x, y))
    f(a, b).numpy()
    t0 = time.time()
    for _ in range(repeats):
        c = f(a, b)
    c.numpy()
    return 2 * n**3 * repeats / (time.time() - t0) / 1e9


def throughput(fn, batch: int, seconds: float = 6.0) -> float:
    x = tf.random.normal((batch, 40, 40, 40, 1))
    fn(x).numpy()
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        fn(x).numpy()
        n += batch
    return n / (time.time() - t0)


def train_freeze_rates(card: dict, freezes: list[int], batch: int = 32, steps: int = 8) -> list[dict]:
    """Sub-tomograms/s of bf16 training steps for each number of frozen leading convolutions, in one run."""
    from deepfinder_unsup.model.classifier import build_classifier, leading_convolutions
    from deepfinder_unsup.train import compile_classifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    n_classes, box = len(card["classes"]), int(card["box_size"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, box, box, box, 1)).astype(np.float32)
    y = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, batch)]
    seconds: dict[int, list[float]] = {n: [] for n in freezes}
    for _ in range(2):  # alternate, so a load on the machine falls on every setting alike
        for n in freezes:
            clf = build_classifier(n_classes, box, card.get("head", "flatten"), output="cosine")
            for layer in leading_convolutions(clf, n):
                layer.trainable = False
            compile_classifier(clf, 1e-5, "cosface", 16.0, 0.1)
            for _ in range(3):
                clf.train_on_batch(x, y)
            t0 = time.perf_counter()
            for _ in range(steps):
                clf.train_on_batch(x, y)
            seconds[n].append((time.perf_counter() - t0) / steps)
    keras.mixed_precision.set_global_policy("float32")
    base = float(np.mean(seconds[freezes[0]]))
    rows = []
    for n in freezes:
        step = float(np.mean(seconds[n]))
        rows.append({"frozen_convs": n, "per_second": round(batch / step, 2), "ratio": round(base / step, 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8, 32, 64, 128])
    parser.add_argument("--train", action="store_true", help="also time training steps (batch 64)")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    parser.add_argument("--int8", action="store_true", help="also OpenVINO int8 (deepfinder_unsup.int8)")
    parser.add_argument(
        "--train-freeze",
        nargs="+",
        type=int,
        default=[],
        metavar="N",
        help="time bf16 training steps (batch 32, the model's head and classes, CosFace) with the encoder's first "
        "N convolutions frozen (train --freeze-convs), alternating, each twice; ratios to N = 0",
    )
    args = parser.parse_args()
    from deepfinder_unsup.embed import Embedder
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import embedding_model, with_dtype_policy

    emb = Embedder(args.model, tta=False).fit()
    model, _ = load_model(emb._resolved_path())
    net = embedding_model(model)
    flops = layer_flops(net)
    peak = matmul_peak_gflops()
    results = {"gflop_per_subtomogram": round(flops / 1e9, 3), "matmul_peak_gflops_fp32": round(peak, 1), "rows": []}
    fns = {
        precision: tf.function(lambda x, m=m: m(x, training=False), jit_compile=False)
        for precision, m in {"float32": net, "bfloat16": with_dtype_policy(net, "mixed_bfloat16")}.items()
    }
    if args.int8:
        from deepfinder_unsup.int8 import int8_embedding_function

        run = int8_embedding_function(emb._resolved_path(), net, emb.card)
        fns["int8"] = lambda x: tf.constant(run(x.numpy()))
    for precision, fn in fns.items():
        for b in args.batches:
            rate = throughput(fn, b)
            results["rows"].append(
                {
                    "precision": precision,
                    "batch": b,
                    "per_second": round(rate, 1),
                    "gflops": round(rate * flops / 1e9, 1),
                }
            )
            print(json.dumps(results["rows"][-1]), flush=True)
    if args.train_freeze:
        results["train_freeze"] = train_freeze_rates(emb.card, args.train_freeze)
    if args.train:
        from deepfinder_unsup.train import compile_classifier

        clf = keras.models.clone_model(model)
        compile_classifier(clf)
        x = np.random.standard_normal((64, 40, 40, 40, 1)).astype(np.float32)
        y = np.eye(model.output.shape[-1], dtype=np.float32)[np.random.randint(0, model.output.shape[-1], 64)]
        clf.train_on_batch(x, y)
        t0, n = time.time(), 0
        while time.time() - t0 < 20:
            clf.train_on_batch(x, y)
            n += 64
        rate = n / (time.time() - t0)
        results["train_per_second"] = round(rate, 1)
        results["train_gflops"] = round(rate * 3 * flops / 1e9, 1)  # forward + backward ~ 3x forward
    from deepfinder_unsup.embed import cpu_has_bf16

    results["cpu_native_bf16"] = cpu_has_bf16()
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
