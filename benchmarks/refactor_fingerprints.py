"""Fingerprints of what training and adaptation produce, to check that a refactoring changed nothing: run it
before and after, compare the two JSON files (``cmp``, or ``--compare A B``).

    TF_DETERMINISTIC_OPS=1 python benchmarks/refactor_fingerprints.py --out runs/before
    TF_DETERMINISTIC_OPS=1 python benchmarks/refactor_fingerprints.py --out runs/after
    python benchmarks/refactor_fingerprints.py --compare runs/before/fingerprints.json runs/after/fingerprints.json

``--parts adapt`` (or ``train``) runs one half only.
Small fixed-seed runs on 16^3 boxes, float32: ``adapt`` with each of its seven methods (2 rounds of 2 steps,
unguarded, on two kinds of noisy picks; the model: the shipped one's convolutions and embedding layer at a 16^3
box, as the suite's ``small_model``); ``train`` on the fly with every loss (contrast, drawn-once structures,
binding, reuse, a monitor, epoch models), on a data set file, and resumed. Each gives a SHA-256 of the written
weights and the card or report without times, dates and paths. Two runs of the same code give the same file
(session 48, 2-core Xeon with AMX, beside a training run: "the same"; its ``adapt`` and ``train`` refactorings
were checked with this script's first form, runs/s48, and matched bit for bit; session 51's splits of ``adapt`` and
``train`` into packages, each with its part, bit for bit too). About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

SMALL_BOX = 16
SHAPES = ["builtin:ring", "builtin:barrel"]
UNSTABLE = {"seconds", "minutes", "date", "command", "created", "data", "input_model"}  # times, dates, paths


def weights_digest(path: Path) -> str:
    from deepfinder_unsup.model.card import load_model

    model, _ = load_model(path)
    return hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()


def stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in UNSTABLE}


def small_model(out: Path) -> Path:
    """The suite's small model (tests/conftest.py): the shipped weights where their shapes allow."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model, save_model
    from deepfinder_unsup.model.classifier import build_classifier

    keras.utils.set_random_seed(0)
    model = build_classifier(3, box_size=SMALL_BOX, head="flatten_conv", output="cosine", binding_states=True)
    shipped, _ = load_model(resolve_model_path(None))
    for layer in model.layers:
        try:
            weights = shipped.get_layer(layer.name).get_weights()
        except ValueError:
            continue
        if [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
    classes = {"0": "negative", "1": "proc0000000", "2": "proc0000001"}
    card = {"voxel_size": 10.0, "box_size": SMALL_BOX, "classes": classes, "embedding_geometry": "cosine"}
    return save_model(model, out / "small.keras", card, overwrite=True)


def two_kinds_of_picks(n: int, seed: int = 0) -> np.ndarray:
    vols = np.random.default_rng(seed).standard_normal((n, SMALL_BOX, SMALL_BOX, SMALL_BOX)).astype(np.float32)
    q = SMALL_BOX // 4
    vols[: n // 2, q : 2 * q, q : 3 * q, q : 2 * q] += 1.5
    vols[n // 2 :, 2 * q - 1 : 2 * q + 1, :, :] += 1.5
    return vols


def adapt_fingerprints(out: Path) -> dict:
    import keras

    from deepfinder_unsup import adapt as adapt_module
    from deepfinder_unsup.adapt import simulated
    from deepfinder_unsup.simulate import like

    like.SYNTHESIS_BOXES, simulated.ANCHOR_POOL = 4, 32  # the suite's cheaper settings
    model, vols, result = small_model(out), two_kinds_of_picks(30), {}
    for method in adapt_module.METHODS:
        keras.utils.set_random_seed(1)
        structures = SHAPES if method in ("like", "coral") else None
        report = adapt_module.adapt(
            model, vols, out / f"{method}.keras", method, 2, 2, 4, k=3, guard=False, overwrite=True,
            structures=structures, precision="float32", tta=method != "dann",
        )  # fmt: skip
        result[method] = {"weights": weights_digest(out / f"{method}.keras"), "report": stable(asdict(report))}
    return result


def train_fingerprints(out: Path) -> dict:
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.model.card import read_card

    config = out / "small.json"
    config.write_text(f'{{"box_size": {SMALL_BOX}}}')
    small = ["--per-class", "4", "--config", str(config), "--quiet", "--workers", "1"]
    for name, seed in (("val", "1"), ("trn", "2")):
        assert main(["simulate", "--structures", *SHAPES, *small, "--out", str(out / name), "--seed", seed]) == 0
    val = str(out / "val" / "dataset.h5")
    common = ["--val", val, "--batch-size", "4", "--steps-per-epoch", "2", "--quiet", "--precision", "float32"]
    common += ["--seed", "5"]
    runs = {
        "simulated": ["--structures", *SHAPES, "--loss", "cosface", "--sim-config", str(config)]
        + ["--contrast-weight", "0.5", "--fresh-structures", "0.5", "--binding-weight", "1", "--reuse", "2"]
        + ["--monitor", val, "--select-by", "monitor_v_measure_cos", "--keep-epochs"],
        "data_set_file": ["--train", str(out / "trn" / "dataset.h5")],
    }
    result = {}
    for name, args in runs.items():
        assert main(["train", *args, *common, "--epochs", "2", "--out", str(out / name)]) == 0, name
        model = out / name / "model.keras"
        history = (out / name / "history.csv").read_text()
        card = stable(read_card(model)["training"])
        result[name] = {"weights": weights_digest(model), "card": card, "history": history}
    resumed = ["train", *runs["data_set_file"], *common, "--out", str(out / "resumed")]
    assert main([*resumed, "--epochs", "1"]) == 0 and main([*resumed, "--epochs", "2", "--resume"]) == 0
    model = out / "resumed" / "model.keras"
    result["resumed"] = {"weights": weights_digest(model), "card": stable(read_card(model)["training"])}
    return result


def compare(a: Path, b: Path) -> int:
    first, second = json.loads(a.read_text()), json.loads(b.read_text())
    differ = [key for key in sorted(set(first) | set(second)) if first.get(key) != second.get(key)]
    print("the same" if not differ else f"different: {', '.join(differ)}")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="work folder; fingerprints.json is written in it")
    parser.add_argument(
        "--parts", nargs="+", choices=("adapt", "train"), default=["adapt", "train"], help="what to fingerprint"
    )
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two fingerprint files")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    adapt_dir, train_dir = args.out / "adapt", args.out / "train"
    adapt_dir.mkdir()
    train_dir.mkdir()
    result = {}
    if "adapt" in args.parts:
        result.update({f"adapt:{k}": v for k, v in adapt_fingerprints(adapt_dir).items()})
    if "train" in args.parts:
        result.update({f"train:{k}": v for k, v in train_fingerprints(train_dir).items()})
    text = json.dumps(result, indent=1, sort_keys=True, default=str)
    (args.out / "fingerprints.json").write_text(text.replace(str(args.out), "OUT"))  # the same wherever it ran
    print(f"wrote {args.out / 'fingerprints.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
