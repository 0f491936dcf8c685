"""Silence TensorFlow's chatter: start-up notices (oneDNN / CUDA) and Grappler's harmless error lines.

TF_CPP_MIN_LOG_LEVEL does not silence the oneDNN notice, so stderr is redirected at the file-descriptor
level while TensorFlow is imported and its devices are initialised. oneDNN itself stays on (turning it off
costs 2-3x speed). TensorFlow 2.21 also logs, at C++ ERROR level, "tfg_optimizer_hook ... failed:
INVALID_ARGUMENT: Node .../Relu has an empty op name" each time it traces any Dense -> ReLU for a new batch
shape (its remapper's fusion, then an MLIR pass that cannot read it; the graph runs unchanged): six such lines
per ``embed``, which read as a failure. Level 3 hides C++ log lines of every level; a real failure still
raises its Python exception, which the CLI reports. ``--verbose`` (or the user's own TF_CPP_MIN_LOG_LEVEL)
shows them all.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_to_devnull():
    """Send file descriptor 2 to /dev/null for the duration (Python and C++ writes alike)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly(verbose: bool = False):
    """Import TensorFlow (and list its devices) without its start-up messages unless ``verbose``."""
    if verbose:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf
