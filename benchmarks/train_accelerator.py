"""Train f_theta on an accelerator machine without TensorFlow (Keras 3 on JAX), simulating on its CPU cores.

The GPU trains far faster than one core simulates, so the machine's cores simulate class-balanced sub-tomograms
in worker processes (the package's own simulator, randomised microscopes) into a growing in-memory pool, and
the GPU trains on augmented batches drawn from the pool, each sample used at most ``--replay`` times on
average. The learning rate warms up, then decays by a cosine over the wall-time budget. Checkpoints (float32,
with a provisional model card) are written at fixed fractions of the budget.

Two steps:

    # on the GPU machine (JAX backend; the model, its losses and the simulator use Keras ops only)
    python benchmarks/train_accelerator.py train --structures SPEC... --init-model M --minutes 8 --out DIR
    # here (TensorFlow): TF must give the embeddings JAX gave on the same inputs; then validate, card, save
    python benchmarks/train_accelerator.py finalise DIR/final.keras --check DIR/check.npz \
        --val runs/val_shrec21/dataset.h5 --out runs/gpu/model.keras

Session 4's command is benchmarks/results/train_accelerator_session4.sh, session 39's train_accelerator_session39.sh
(the shipped recipe at GPU scale, level); the next lease's, more negatives per step and every convolution trained,
is benchmarks/results/train_accelerator_next.sh.
Preparing a device run (the machine has JAX but neither TensorFlow, Keras nor the maps, and no network):

    echo /.accel/ >> .git/info/exclude      # an ignored folder, named in the device call's ``carry``
    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .accel/whl \
        keras==3.15.1 namex optree mrcfile starfile
    mkdir -p .accel/structures && cp -r ../shared/structures/{maps_10A,maps_10A_extra,membrane_10A} .accel/structures/
    # the working tree travels whole and must stay under 64 MiB: untrack the checkpoints for the call
    git rm -q --cached benchmarks/checkpoints/*.keras deepfinder_unsup/pretrained/f_theta_shrec21.keras
    # the device command (session 4: 8.3 minutes of training in a 503-second call; session 39: 7.4 in 495 s):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .accel/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    STRUCTURES=.accel/structures OMP_NUM_THREADS=1 bash benchmarks/results/train_accelerator_next.sh $OUT \
        --minutes 8.3 --workers 14
    git reset -q                                # the checkpoints tracked again
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 32  # sub-tomograms per message from a worker


# --- simulation workers (no Keras: forked before the backend starts) --------------------------------------
def _simulate_forever(specs, config_path, seed, out_queue, map_weight=1.0, fresh_share=0.0, negative_weight=1.0):
    """Chunks of class-balanced sub-tomograms ("class", x, labels), each followed, with ``fresh_share`` f > 0,
    by pairs of procedural structures drawn once ("fresh", a, b) in the batches' ratio: f of each batch's pairs
    are fresh, so both pools fill at the rate the batches use them."""
    os.environ["OMP_NUM_THREADS"] = "1"
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import (
        balanced_labels,
        class_draw_weights,
        class_names_of,
        simulate_fresh_pairs,
    )
    from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram
    from deepfinder_unsup.simulate.structures import load_structures

    config = SimConfig.from_file(config_path) if config_path else SimConfig()
    structures = load_structures(specs, config.voxel_size)
    library = StructureLibrary(structures)
    labels = np.array(sorted(class_names_of(structures, config)))
    weighted = map_weight != 1.0 or negative_weight != 1.0
    weights = class_draw_weights(structures, labels, map_weight, negative_weight) if weighted else None  # train's
    rng = np.random.default_rng(seed)
    fresh_per_chunk = CHUNK / 2 * fresh_share / (1 - fresh_share)  # pairs per class chunk: the batches' ratio
    while True:
        chosen = balanced_labels(labels, CHUNK, rng, weights)
        x = np.stack([simulate_subtomogram(library, int(lab), config, rng)[0] for lab in chosen])
        out_queue.put(("class", x.astype(np.float16), chosen.astype(np.int32)))
        n_fresh = int(fresh_per_chunk) + int(rng.uniform() < fresh_per_chunk % 1)
        if n_fresh:
            a, b = simulate_fresh_pairs(library, n_fresh, config, rng)
            out_queue.put(("fresh", a.astype(np.float16), b.astype(np.float16)))


def augment(batch: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """DeepFinder's 180 degree rotation about y (p = 0.5) and an integer shift (as ``train.augment``)."""
    out = batch.astype(np.float32)
    for i in range(len(out)):
        if rng.uniform() < 0.5:
            out[i] = out[i, ::-1, :, ::-1]
        out[i] = np.roll(out[i], tuple(rng.integers(-max_shift, max_shift + 1, size=3)), axis=(0, 1, 2))
    return out


def learning_rate_at(fraction: float, step: int, peak: float, warmup: int, floor: float = 0.02) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to ``floor * peak`` over the time budget."""
    warm = min(1.0, (step + 1) / warmup)
    decay = floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(1.0, fraction)))
    return float(peak * warm * decay)


def same_class_partners(labels: np.ndarray, picked: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each index in ``picked``, another index of the same label drawn at random (itself when its class has
    no other entry yet): the second halves of the contrastive loss's pairs, from the pool."""
    out = np.empty_like(picked)
    for i, p in enumerate(picked):
        same = np.flatnonzero(labels == labels[p])
        others = same[same != p]
        out[i] = rng.choice(others) if len(others) else p
    return out


def fresh_pairs_in_batch(x, y, b, fresh_a, fresh_b):
    """The class pairs (rows i, i + P of ``x``, class rows ``y``, binding rows ``b``) with the fresh pairs
    (``fresh_a``[j], ``fresh_b``[j]) inserted so that row i still pairs with row i + B/2; fresh rows get zero class
    and binding rows and sample weight 0 (``SimulatedBatches`` with ``fresh_share``). Returns (x, y, b, w)."""
    p, f = len(x) // 2, len(fresh_a)
    zeros_y, zeros_b = np.zeros((f, y.shape[1]), y.dtype), np.zeros((f, b.shape[1]), b.dtype)
    w_half = np.concatenate([np.ones(p, np.float32), np.zeros(f, np.float32)])

    def interleave(first, second):
        return np.concatenate([first[:p], second[0], first[p:], second[1]])

    return (
        interleave(x, (fresh_a, fresh_b)),
        interleave(y, (zeros_y, zeros_y)),
        interleave(b, (zeros_b, zeros_b)),
        np.concatenate([w_half, w_half]),
    )


def initial_model(args, n_classes: int, box: int, with_binding: bool):
    """(the classifier to train, what it took from ``--init-model``): the head is the init model's own (its
    card's ``head``; ``flatten_conv_wide``, the shipped design of sessions 48-66, without one) unless ``--head``
    says otherwise, so that every layer of the init model carries over (session 4's script always built
    ``flatten``); so is its ``flatten_drop`` unless ``--flatten-drop`` is given."""
    from deepfinder_unsup.model.card import load_model, read_card
    from deepfinder_unsup.model.classifier import build_classifier, copy_matching_weights

    card = read_card(args.init_model) if args.init_model else {}
    if args.head is None:
        args.head = str(card.get("head", "flatten")) if args.init_model else "flatten_conv_wide"
    if args.flatten_drop is None:  # train's rule (train.flatten_drop_of_model): a removed flatten path stays removed
        config = card.get("training", {}).get("config") or {}
        args.flatten_drop = float(config.get("flatten_drop") or 0.0) if args.head.startswith("flatten_conv") else 0.0
    model = build_classifier(
        n_classes,
        box,
        args.head,
        output="cosine",
        binding_states=with_binding,
        view_weight=args.view_weight,
        contrast_weight=args.contrast_weight,
        temperature=args.temperature,
        flatten_drop=args.flatten_drop,
    )
    if not args.init_model:
        return model, {}
    source, card = load_model(args.init_model)
    return model, {
        "init_model": str(args.init_model),
        "copied_layers": copy_matching_weights(model, source),
        "samples_seen_before": int(card.get("training", {}).get("samples_seen_total", 0)),
    }


def train_command(args) -> None:
    """Simulate on the CPU cores and train on the accelerator for ``args.minutes`` of wall time."""
    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "log.txt", "a", buffering=1)

    def say(msg):
        line = f"[{time.time() - t_start:7.1f} s] {msg}"
        print(line, flush=True)
        log.write(line + "\n")

    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import binding_states_of, class_names_of
    from deepfinder_unsup.simulate.structures import load_structures

    if args.fresh_structures > 0 and args.contrast_weight <= 0:
        sys.exit("--fresh-structures needs the contrastive loss (--contrast-weight): nothing else sees them")
    if not 0.0 <= args.fresh_structures < 1.0:
        sys.exit(
            f"--fresh-structures must be a share in [0, 1) here (the class loss needs classes), got "
            f"{args.fresh_structures}"
        )
    config = SimConfig.from_file(args.sim_config) if args.sim_config else SimConfig()
    structures = load_structures(args.structures, config.voxel_size)
    class_names = class_names_of(structures, config)
    classes = np.array(sorted(class_names))
    index_of = {int(c): i for i, c in enumerate(classes)}
    states_of = binding_states_of(structures, config)
    binding_code = np.array([states_of[int(c)] for c in classes], int)  # per output index
    n_workers = args.workers or max(1, (os.cpu_count() or 2) - 2)
    ctx = mp.get_context("fork")
    data_queue = ctx.Queue(maxsize=256)
    seeds = np.random.SeedSequence(args.seed).spawn(n_workers)
    workers = [
        ctx.Process(
            target=_simulate_forever,
            args=(
                args.structures,
                args.sim_config,
                s.generate_state(1)[0],
                data_queue,
                args.map_weight,
                args.fresh_structures,
                args.negative_weight,
            ),
            daemon=True,
        )
        for s in seeds
    ]
    for w in workers:
        w.start()
    say(f"{len(classes)} classes, {n_workers} simulation workers, box {config.box_size} at {config.voxel_size} Å")

    import keras

    from deepfinder_unsup.model.card import save_model
    from deepfinder_unsup.model.classifier import embedding_model, with_dtype_policy
    from deepfinder_unsup.model.losses import make_loss
    from deepfinder_unsup.volume import random_wedge_symmetric_view

    say(f"keras {keras.__version__} on {keras.backend.backend()}")
    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy(args.precision)
    with_binding = args.binding_weight > 0
    if (args.view_weight > 0 or args.contrast_weight > 0) and args.batch_size % 2:
        sys.exit(f"--view-weight and --contrast-weight need an even --batch-size (pairs), got {args.batch_size}")
    if args.view_weight > 0 and args.contrast_weight > 0:
        sys.exit("--view-weight and --contrast-weight pair the batch differently: choose one")
    model, init_info = initial_model(args, len(classes), config.box_size, with_binding)
    if args.init_model:
        say(f"head {args.head}; initialised {len(init_info['copied_layers'])} layers from {args.init_model}")
    from deepfinder_unsup.model.classifier import leading_convolutions

    for layer in leading_convolutions(model, args.freeze_convs):  # train --freeze-convs
        layer.trainable = False
    class_loss = make_loss("cosface", args.scale, args.margin, args.focal_gamma)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
        loss=[class_loss, keras.losses.CategoricalCrossentropy()] if with_binding else class_loss,
        loss_weights=[1.0, args.binding_weight] if with_binding else None,
        weighted_metrics=[["accuracy"], ["accuracy"]] if with_binding else ["accuracy"],
        jit_compile=keras.backend.backend() != "tensorflow",  # XLA: 6x slower on these CPUs (a smoke test here)
    )

    capacity = args.pool_size
    box = config.box_size
    pool_x = np.empty((capacity, box, box, box), np.float16)
    pool_y = np.empty(capacity, np.int32)
    fresh_capacity = capacity // 2 if args.fresh_structures > 0 else 0  # pairs: as many sub-tomograms
    pool_fa = np.empty((fresh_capacity, box, box, box), np.float16)
    pool_fb = np.empty((fresh_capacity, box, box, box), np.float16)
    n_pool = n_fresh_pool = n_received = 0
    pairs = args.batch_size // 2
    n_fresh = int(round(args.fresh_structures * pairs))  # of each batch's pairs
    rng = np.random.default_rng(args.seed + 1)
    budget = 60 * args.minutes - (time.time() - t_start)
    t0 = time.time()
    checkpoints = sorted(float(f) for f in args.checkpoints)
    history: list[dict] = []
    step = trained = 0
    losses, accs = [], []
    last_report = time.time()

    def drain(block: bool) -> int:
        nonlocal n_pool, n_fresh_pool, n_received
        got = 0
        while True:
            try:
                kind, a, b = data_queue.get(block=block and got == 0, timeout=5)
            except queue.Empty:
                return got
            if kind == "fresh":
                for ai, bi in zip(a, b):
                    slot = n_fresh_pool if n_fresh_pool < fresh_capacity else int(rng.integers(fresh_capacity))
                    pool_fa[slot], pool_fb[slot] = ai, bi
                    n_fresh_pool = min(n_fresh_pool + 1, fresh_capacity)
                n_received += 2 * len(a)
                got += 2 * len(a)
                continue
            for xi, yi in zip(a, b):
                slot = n_pool if n_pool < capacity else int(rng.integers(capacity))  # reservoir when full
                pool_x[slot], pool_y[slot] = xi, index_of[int(yi)]
                n_pool = min(n_pool + 1, capacity)
            n_received += len(a)
            got += len(a)

    def save(name: str, fraction: float) -> None:
        f32 = with_dtype_policy(model, "float32")
        minutes = (time.time() - t_start) / 60
        card = provisional_card(args, class_names, classes, config, minutes, trained, n_received, init_info)
        save_model(f32, out / name, card, overwrite=True)
        say(f"saved {name} at {fraction:.2f} of the budget ({trained} samples trained, {n_received} simulated)")

    while n_pool < args.min_pool or (n_fresh and n_fresh_pool < args.min_pool // 4):
        drain(block=True)
    say(f"pool of {n_pool} ready; training")
    while True:
        fraction = (time.time() - t0) / budget
        if fraction >= 1.0:
            break
        drain(block=False)
        if trained >= args.replay * n_received:
            drain(block=True)
            continue
        if args.view_weight > 0:  # pairs: each particle and a wedge-symmetric view of it (train --view-weight)
            half = rng.integers(n_pool, size=args.batch_size // 2)
            sel = np.concatenate([half, half])
            x = augment(pool_x[half], rng)
            x = np.concatenate([x, random_wedge_symmetric_view(x, rng)])
        elif args.contrast_weight > 0:  # pairs: two pool entries of one class (train --contrast-weight) ...
            half = rng.integers(n_pool, size=pairs - n_fresh)
            sel = np.concatenate([half, same_class_partners(pool_y[:n_pool], half, rng)])
            x = augment(pool_x[sel], rng)
        else:
            sel = rng.integers(n_pool, size=args.batch_size)
            x = augment(pool_x[sel], rng)
        y = np.zeros((len(sel), len(classes)), np.float32)
        y[np.arange(len(sel)), pool_y[sel]] = 1.0
        b = np.eye(3, dtype=np.float32)[binding_code[pool_y[sel]]]
        weights = None
        if n_fresh:  # ... and fresh_share of them of structures drawn once: the contrastive loss alone sees them
            fresh = rng.integers(n_fresh_pool, size=n_fresh)
            x, y, b, w = fresh_pairs_in_batch(x, y, b, augment(pool_fa[fresh], rng), augment(pool_fb[fresh], rng))
            weights = (w, w) if with_binding else w
        x = x[..., None]
        model.optimizer.learning_rate = learning_rate_at(fraction, step, args.learning_rate, args.warmup)
        if with_binding:
            logs = model.train_on_batch(x, (y, b), sample_weight=weights, return_dict=True)
            acc = logs["class_output_accuracy"]
        else:
            logs = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
            acc = logs["accuracy"]
        losses.append(float(logs["loss"]))
        accs.append(float(acc))
        step += 1
        trained += args.batch_size
        if checkpoints and fraction >= checkpoints[0]:
            save(f"ckpt_{int(round(100 * checkpoints.pop(0))):03d}.keras", fraction)
        if time.time() - last_report > 30:
            row = {
                "seconds": round(time.time() - t_start, 1),
                "step": step,
                "trained": trained,
                "simulated": n_received,
                "simulated_per_s": round(n_received / (time.time() - t0 + 1e-9), 1),
                "loss": float(np.mean(losses)),
                "accuracy": float(np.mean(accs)),
                "learning_rate": learning_rate_at(fraction, step, args.learning_rate, args.warmup),
            }
            history.append(row)
            (out / "history.json").write_text(json.dumps(history, indent=1))
            say(json.dumps(row))
            losses, accs, last_report = [], [], time.time()
    for w in workers:
        w.terminate()
    save("final.keras", 1.0)
    write_check(model, embedding_model, with_dtype_policy, pool_x[: args.check], out / "check.npz")
    (out / "history.json").write_text(json.dumps(history, indent=1))
    say(f"done: {step} steps, {trained} samples trained on {n_received} simulated")


def write_check(model, embedding_model, with_dtype_policy, x: np.ndarray, path: Path) -> None:
    """Inputs and the float32 embeddings this backend gives: TensorFlow must give the same (``finalise``)."""
    import contextlib

    import keras

    emb = embedding_model(with_dtype_policy(model, "float32"))
    x = x.astype(np.float32)[..., None]
    precision = contextlib.nullcontext()
    if keras.backend.backend() == "jax":  # a smoke test here runs on TensorFlow
        import jax

        precision = jax.default_matmul_precision("highest")  # no TF32 on the GPU: compare like with like
    with precision:
        values = np.asarray(emb.predict(x, batch_size=16, verbose=0))
    np.savez_compressed(path, x=x, embedding=values)


def provisional_card(args, class_names, classes, config, minutes, trained, simulated, init_info) -> dict:
    """The model card the accelerator writes (``finalise`` adds the validation and the TensorFlow check)."""
    import keras

    from deepfinder_unsup._version import __version__

    return {
        "format": "deepfinder-unsup model",
        "package_version": __version__,
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "python": platform.python_version(),
        "voxel_size": float(config.voxel_size),
        "box_size": int(config.box_size),
        "normalisation": "per sub-tomogram zero mean, unit standard deviation",
        "classes": {int(c): class_names.get(int(c), str(c)) for c in classes},
        "embedding_layer": "embedding",
        "embedding_dim": 32,
        "head": args.head,
        "loss": "cosface",
        "embedding_geometry": "cosine",
        "training": {
            "data": f"simulated on the fly on {args.workers or (os.cpu_count() or 2) - 2} cores: "
            f"{len(classes)} classes, specs {args.structures}",
            "sim_config": config.to_dict(),
            "config": {k: v for k, v in vars(args).items() if k not in ("func", "structures") and not callable(v)},
            "command": " ".join(sys.argv),
            "minutes": round(minutes, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cores + accelerator (JAX)",
            "samples_seen": int(trained),
            "unique_samples": int(simulated),
            "samples_seen_total": int(trained) + init_info.get("samples_seen_before", 0),
            **init_info,
        },
    }


# --- here: TensorFlow loads it and gives the same embeddings --------------------------------------------
def finalise_command(args) -> None:
    """Load the accelerator's model with TensorFlow, compare embeddings, validate, write the final card."""
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.model.card import load_model, save_model
    from deepfinder_unsup.model.classifier import embedding_model
    from deepfinder_unsup.train import evaluate_classifier, relabel_by_name

    model, card = load_model(args.model)
    check = np.load(args.check)
    emb = embedding_model(model).predict(check["x"], batch_size=16, verbose=0)
    diff = float(np.max(np.abs(emb - check["embedding"])))
    scale = float(np.max(np.abs(check["embedding"])))
    cos = np.sum(emb * check["embedding"], 1) / (
        np.linalg.norm(emb, axis=1) * np.linalg.norm(check["embedding"], axis=1)
    )
    print(f"TensorFlow vs JAX embeddings: max |diff| {diff:.2e} (max |value| {scale:.2f}), min cosine {cos.min():.6f}")
    if float(cos.min()) < 0.9999:
        raise SystemExit("TensorFlow does not give the embeddings JAX gave: not finalised")
    classes = np.array(sorted(int(c) for c in card["classes"]))
    class_names = {int(c): name for c, name in card["classes"].items()}
    val = relabel_by_name(read_dataset(args.val), class_names)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = evaluate_classifier(model, val, classes, out.parent)
    import tensorflow as tf

    card["tensorflow_version"] = tf.__version__
    card["backend_check"] = {"max_abs_diff": diff, "min_cosine": float(cos.min()), "n": int(len(emb))}
    card["validation"] = report
    save_model(model, out, card, overwrite=True)
    print(f"wrote {out}: validation accuracy {report['val_accuracy']:.3f}, V {report['val_v_measure_kmeans']:.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(required=True)
    t = sub.add_parser("train")
    t.add_argument("--structures", nargs="+", required=True)
    t.add_argument("--sim-config")
    t.add_argument("--init-model")
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, default=8.0)
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--learning-rate", type=float, default=3e-4)
    t.add_argument("--warmup", type=int, default=300)
    t.add_argument("--scale", type=float, default=16.0)
    t.add_argument("--margin", type=float, default=0.1)
    t.add_argument("--focal-gamma", type=float, default=0.0, help="the class loss focal with this exponent (train's)")
    t.add_argument("--head", default=None, help="the head (default: the init model's, else flatten_conv_wide)")
    t.add_argument("--flatten-drop", type=float, default=None, help="train's --flatten-drop (default: the init's)")
    t.add_argument("--map-weight", type=float, default=1.0, help="classes from map files drawn W x as often (train's)")
    t.add_argument("--negative-weight", type=float, default=1.0, help="the negatives drawn W x as often (train's)")
    t.add_argument("--binding-weight", type=float, default=0.0, help="weight of the binding-state loss (train's)")
    t.add_argument("--view-weight", type=float, default=0.0, help="weight of the paired-view loss (train's)")
    t.add_argument("--contrast-weight", type=float, default=0.0, help="weight of the contrastive loss (train's)")
    t.add_argument("--temperature", type=float, default=0.1, help="temperature of the contrastive loss")
    t.add_argument(
        "--fresh-structures",
        type=float,
        default=0.0,
        help="share of each batch's contrastive pairs of procedural structures drawn once (train's)",
    )
    t.add_argument("--freeze-convs", type=int, default=0, help="the encoder's first N convolutions frozen (train's)")
    t.add_argument("--precision", default="mixed_bfloat16")
    t.add_argument("--replay", type=float, default=8.0, help="average uses of each simulated sample, at most")
    t.add_argument("--pool-size", type=int, default=250_000)
    t.add_argument("--min-pool", type=int, default=2048)
    t.add_argument("--checkpoints", nargs="*", default=["0.5", "0.7", "0.85"])
    t.add_argument("--check", type=int, default=16, help="sub-tomograms for the TensorFlow comparison")
    t.add_argument("--seed", type=int, default=17)
    t.set_defaults(func=train_command)
    f = sub.add_parser("finalise")
    f.add_argument("model")
    f.add_argument("--check", required=True)
    f.add_argument("--val", required=True)
    f.add_argument("--out", required=True)
    f.set_defaults(func=finalise_command)
    args = parser.parse_args(argv)
    if args.func is train_command:  # before the package is imported: it pins Keras' backend
        os.environ.setdefault("DEEPFINDER_UNSUP_KERAS_BACKEND", "jax")
    args.func(args)


if __name__ == "__main__":
    main()
