"""``python -m deepfinder_unsup.cli``: the ``deepfinder-unsup`` program."""

import sys

from . import main

sys.exit(main())
