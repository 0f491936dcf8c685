"""Keras' backend: TensorFlow whatever KERAS_BACKEND says, a clear error when Keras already runs on another,
and the explicit opt-out that the accelerator training script uses (benchmarks/train_accelerator.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "DEEPFINDER_UNSUP_KERAS_BACKEND")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True)


def test_tensorflow_whatever_keras_backend_says():
    run = _python("import deepfinder_unsup, keras; print(keras.backend.backend())", KERAS_BACKEND="jax")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("tensorflow")


# Keras on another backend, without installing one: a stand-in module that answers like Keras on JAX
FAKE_KERAS_ON_JAX = (
    "import sys, types; keras = types.ModuleType('keras'); "
    "keras.backend = types.SimpleNamespace(backend=lambda: 'jax'); sys.modules['keras'] = keras; "
)


def test_keras_already_on_another_backend_is_a_clear_error():
    run = _python(FAKE_KERAS_ON_JAX + "import deepfinder_unsup")
    assert run.returncode != 0
    assert "already imported with the 'jax' backend" in run.stderr
    assert "import deepfinder_unsup first" in run.stderr


def test_explicit_opt_out_for_training_without_tensorflow():
    run = _python(
        "import os, deepfinder_unsup; print(os.environ['KERAS_BACKEND'])", DEEPFINDER_UNSUP_KERAS_BACKEND="jax"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "jax"
    run = _python(FAKE_KERAS_ON_JAX + "import deepfinder_unsup", DEEPFINDER_UNSUP_KERAS_BACKEND="jax")
    assert run.returncode == 0, run.stderr
