"""Silence TensorFlow's start-up chatter (oneDNN / CUDA notices written to fd 2 by C++ code).

TF_CPP_MIN_LOG_LEVEL does not silence the oneDNN notice, so stderr is redirected at the file-descriptor
level while TensorFlow is imported and its devices are initialised. oneDNN itself stays on (turning it off
costs 2-3x speed).
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf
