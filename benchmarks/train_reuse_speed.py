"""How much faster training runs with ``train --reuse R``, in the configuration the shipped model trains on.

    python benchmarks/train_reuse_speed.py [--reuse 1 2] [--steps 32] [--rounds 2] [--out OUT.json]

Runs ``deepfinder-unsup train`` (the lineage's recipe, benchmarks/results/train_reuse_session35.sh: 595 classes,
paired contrast, binding, bf16, ``--freeze-convs 4``, 2 simulating workers, batches of 32, from the shipped
``general`` model) for 2 epochs of ``--steps`` each, once per reuse setting per round, the settings alternating
so that whatever else the machine runs falls on all of them alike. Keeps the SECOND epoch's wall time (the
first pays for the workers' start and the structure caches) and reports each setting's steps a second and
their ratio to ``--reuse 1``'s: what the same hour of training buys in steps. Not a timed test: the figures
depend on the processor (detected and written with them).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"(\d+)/(\d+) - (\d+)s")


def cpu_flags() -> dict:
    """The processor and the instruction sets that set the training step's speed."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return {"cpu": name, **{f: f in flags for f in ("avx512_bf16", "amx_bf16", "avx512_vnni", "amx_int8")}}


def epoch_seconds(reuse: int, steps: int, work: Path) -> list[int]:
    """Wall seconds of each epoch of a 2-epoch training run with ``--reuse reuse``."""
    script = f"""set -e; cd {ROOT}; source benchmarks/configs/structures_595.sh
deepfinder-unsup train --structures "${{STRUCTURES_595[@]}}" --val runs/val_shrec21/dataset.h5 \\
  --binding-weight 2 --contrast-weight 1 --temperature 0.1 --loss cosface --margin 0.2 --scale 16 --map-weight 8 \\
  --precision mixed_bfloat16 --batch-size 32 --steps-per-epoch {steps} --epochs 2 --patience 100 --freeze-convs 4 \\
  --workers 2 --out {work} --init-model general --sim-config benchmarks/configs/train_general_snr_particle2.json \\
  --learning-rate 5e-5 --reuse {reuse} --seed 1"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"training with --reuse {reuse} failed:\n{out.stderr[-3000:]}")
    return [int(m.group(3)) for m in EPOCH_LINE.finditer(out.stdout + out.stderr) if m.group(1) == m.group(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=32, help="steps an epoch (default 32)")
    parser.add_argument("--rounds", type=int, default=2, help="times each setting runs, alternating (default 2)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seconds: dict[int, list[int]] = {r: [] for r in args.reuse}
    for round_ in range(args.rounds):
        for reuse in args.reuse:
            with tempfile.TemporaryDirectory() as work:
                epochs = epoch_seconds(reuse, args.steps, Path(work) / "run")
            seconds[reuse].append(epochs[-1])
            print(f"round {round_ + 1}, --reuse {reuse}: epochs {epochs} s", flush=True)
    rate = {r: args.steps / float(np.mean(s)) for r, s in seconds.items()}
    base = rate[args.reuse[0]]
    result = {
        "command": " ".join(sys.argv),
        "machine": cpu_flags(),
        "steps_per_epoch": args.steps,
        "second_epoch_seconds": {str(r): s for r, s in seconds.items()},
        "steps_per_second": {str(r): v for r, v in rate.items()},
        f"ratio_to_reuse_{args.reuse[0]}": {str(r): v / base for r, v in rate.items()},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
