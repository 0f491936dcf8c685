"""The package's messages and progress bars, both on stderr.

Library code logs to the ``deepfinder_unsup`` logger (silent unless the application configures logging; the
CLI shows INFO, ``--verbose`` DEBUG, ``--quiet`` WARNING) and draws tqdm bars that ``--quiet`` (or the
environment variable ``TQDM_DISABLE=1``) turns off.
"""

from __future__ import annotations

import logging
import os

from tqdm.auto import tqdm

logger = logging.getLogger("deepfinder_unsup")


def progress(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr, unless disabled here or by ``TQDM_DISABLE=1`` (the CLI's --quiet)."""
    off = not enabled or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    return tqdm(iterable, disable=off, **kwargs)
