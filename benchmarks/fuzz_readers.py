"""Long fuzzing of the readers, outside the suite: valid files with random byte edits, each read in a child process
with a time limit, so that a read that never returns is counted (and its file kept) instead of hanging the run.

    python benchmarks/fuzz_readers.py --examples 2000 --kinds h5 dataset --out runs/fuzz.json
    python benchmarks/fuzz_readers.py --examples 2000 --kinds h5 --file OLD.h5 --out runs/fuzz_old.json

Each read ends one of five ways: ``ok`` (the damage was harmless: the same content as the valid file's),
``changed`` (read without complaint but with other content: silent damage), ``input_error`` (the package's one
clear error, naming the file: what a user should see), ``other`` (any other exception: a bug) or ``hang`` (no
answer within ``--timeout`` seconds: libhdf5 loops forever on some damaged variable-length strings,
docs/testing.md). Files that hang, change or raise something else are copied to ``--keep`` for a reproduction.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from deepfinder_unsup.io.dataset import read_dataset, read_embeddings, write_dataset, write_embeddings
from deepfinder_unsup.io.files import InputError
from deepfinder_unsup.io.mrc import read_mrc, write_mrc
from deepfinder_unsup.io.objl import new_object, read_objl, write_objl

READERS = {"h5": read_embeddings, "dataset": read_dataset, "xml": read_objl, "mrc": read_mrc}


def valid_file(kind: str, folder: Path) -> Path:
    """A small valid file of each kind, written by the package's own writer."""
    objl = [new_object(1, 10.5, 20, 30, tomo_idx=0, phi=10, the=20, psi=30), new_object(2, 1, 2, 3, tomo_idx=1)]
    path = folder / f"valid.{kind}"
    if kind == "h5":
        write_embeddings(path, np.ones((2, 4)), objl, 10.0, 40, class_names={1: "a", 2: "b"})
    elif kind == "dataset":
        write_dataset(path, np.ones((2, 4, 4, 4)), objl, 10.0, class_names={1: "a", 2: "b"})
    elif kind == "xml":
        write_objl(objl, path)
    else:
        write_mrc(np.arange(512, dtype=np.float32).reshape(8, 8, 8), path, 10.0)
    return path


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to six edits: a few bytes at a random place replaced by 0-8 random bytes (the suite's strategy)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(out))
        out[pos : pos + rng.randint(0, 8)] = rng.randbytes(rng.randint(0, 8))
    return bytes(out)


def digest(value) -> str:
    """A fingerprint of what a reader returned (arrays by their bytes, the rest by its JSON)."""
    h = hashlib.sha256()
    for part in value if isinstance(value, tuple) else (value,):
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        elif hasattr(part, "subtomograms"):
            h.update(part.subtomograms.tobytes() + json.dumps(part.objl, sort_keys=True, default=str).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _read(kind: str, path: str, answer) -> None:
    try:
        answer.put(("read", digest(READERS[kind](path))))
    except InputError as exc:
        answer.put(("input_error" if path in str(exc) else "other", f"InputError without the file name: {exc}"))
    except BaseException as exc:  # noqa: BLE001 - everything else is what we are looking for
        answer.put(("other", f"{type(exc).__name__}: {exc}"))


def read_with_limit(kind: str, path: Path, timeout: float, expected: str) -> tuple[str, str]:
    """How reading ``path`` ends, in a forked child killed after ``timeout`` seconds; a read whose content's
    digest is not ``expected`` is ``changed``."""
    ctx = mp.get_context("fork")
    answer = ctx.Queue()
    child = ctx.Process(target=_read, args=(kind, str(path), answer))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        return "hang", f"no answer in {timeout} s"
    if answer.empty():
        return "other", f"the reader died (exit {child.exitcode})"
    outcome, detail = answer.get()
    if outcome == "read":
        return ("ok", "") if detail == expected else ("changed", "read without error, other content")
    return outcome, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="mutated files per kind")
    parser.add_argument("--kinds", nargs="+", default=sorted(READERS), choices=sorted(READERS))
    parser.add_argument("--file", help="mutate this file instead of a fresh one (one kind only: an older format)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument(
        "--keep", default="runs/fuzz_kept", help="folder for the files that hang, change or raise others"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.file and len(args.kinds) != 1:
        parser.error("--file needs exactly one --kinds")
    work, keep = Path(tempfile.mkdtemp(prefix="dfu_fuzz_")), Path(args.keep)
    results: dict = {"examples": args.examples, "seed": args.seed, "timeout_s": args.timeout, "kinds": {}}
    for kind in args.kinds:
        source = Path(args.file) if args.file else valid_file(kind, work)
        data, rng, counts, kept = source.read_bytes(), random.Random(f"{args.seed}-{kind}"), Counter(), []
        expected = digest(READERS[kind](source))
        start = time.perf_counter()
        for i in range(args.examples):
            path = work / f"mutated_{i}.{kind}"
            path.write_bytes(mutate(data, rng))
            outcome, detail = read_with_limit(kind, path, args.timeout, expected)
            counts[outcome] += 1
            if outcome in ("hang", "other", "changed"):
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, keep / f"{kind}_{args.seed}_{i}.{kind}")
                kept.append({"example": i, "outcome": outcome, "detail": detail[:300]})
            path.unlink()
        results["kinds"][kind] = {
            "file": str(args.file or "written by this version"),
            "counts": dict(counts),
            "kept": kept[:50],
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(kind, dict(counts), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
