#!/bin/bash
# Session 17, CPU: session 16's continuation (train_continue_session16.sh, runs/cont16) was cut after 3 of its 8
# cosine epochs because adaptation studies shared the two cores. This resumes it from runs/cont16/last.keras with
# the optimizer state (the cosine schedule continues at step 900), the cores to itself, to epoch 8; checkpoint by
# the monitor V (cosine), chosen on the protocol after (benchmarks/protocol.py).
cd /work/main
exec bash benchmarks/results/train_continue_session16.sh --resume "$@"
