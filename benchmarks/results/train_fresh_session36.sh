#!/bin/bash
# Session 36's run (2-core AMD EPYC with AVX2 only: no AVX-512 BF16, so float32; bf16 is emulated there and a first
# start in bf16 made about one step a minute, stopped after 70 minutes): structures drawn once, as ONE change to
# session 35's run besides the arithmetic, from its last epoch. The recipe is train_fresh_next.sh's, with a cosine
# over 4 epochs to fit the session; the WallClockLimit stopped it after what fitted in 62 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=4 MINUTES=62 PRECISION=float32 OUT=runs/fresh36 bash benchmarks/results/train_fresh_next.sh
