"""Data of the held-out-class validation (docs/model_card.md): train on 10 SHREC'21 structures, cluster others.

    python benchmarks/heldout_data.py --out DIR

- DIR/train10.h5 (600 per class) and DIR/val10.h5 (60 per class): 10 SHREC'21 maps + negatives, default
  domain randomisation;
- DIR/transfer.h5 (100 per class): the 3 held-out structures (1bxn rubisco, 4cr2 proteasome, 5mrc ribosome),
  the 9 built-in shapes and negatives, simulated with another microscope (benchmarks/configs/
  other_microscope.json: 13.68 Å pixels, 5-7 µm defocus, +-50 degrees by 4, B 600-900, fixed polarity).
"""

import argparse
import time
from pathlib import Path

from deepfinder_unsup.simulate.config import SimConfig
from deepfinder_unsup.simulate.dataset import write_simulated_dataset
from deepfinder_unsup.simulate.structures import BUILTIN_SHAPES, builtin_structure, load_structures

HERE = Path(__file__).resolve().parent
MAPS = HERE.parents[1] / "shared" / "structures" / "maps_10A"
HELD_OUT = ["1bxn", "4cr2", "5mrc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    maps = load_structures([str(MAPS)])
    train10 = [s for s in maps if s.name not in HELD_OUT]
    t = time.time()
    write_simulated_dataset(out / "train10.h5", train10, 600, SimConfig(), seed=11, progress=False)
    write_simulated_dataset(out / "val10.h5", train10, 60, SimConfig(), seed=12, progress=False)
    transfer = [s for s in maps if s.name in HELD_OUT] + [builtin_structure(n) for n in BUILTIN_SHAPES]
    other = SimConfig.from_file(HERE / "configs" / "other_microscope.json")
    write_simulated_dataset(out / "transfer.h5", transfer, 100, other, seed=21, progress=False)
    print(f"done in {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
