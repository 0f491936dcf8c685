"""deepfinder-unsup: unsupervised classification of macromolecules in cryo-electron tomograms.

Moebel & Kervrann 2022 on DeepFinder (Moebel et al. 2021): DeepFinder's encoder + a fully connected head,
trained on simulated sub-tomograms, pruned to a 32-D embedding; real sub-tomograms are embedded and clustered.
The public API is re-exported here; TensorFlow is imported only by the functions that need it.

Public API (loaded on first use):
- files: read_objl / write_objl (DeepFinder's names read_xml / write_xml too), read_star / write_star,
  read_mrc / write_mrc, read_shrec_locations, read_shrec_model, read_dataset / write_dataset,
  read_embeddings / write_embeddings, InputError
- sub-tomograms: extract_subtomograms, iter_subtomograms, load_subtomogram_files, normalise
- the network: load_pretrained, Embedder, build_encoder, build_classifier, embedding_model,
  load_deepfinder_weights
- clustering: sweep_k, select_k, normalise_features, clustered_objl (the per-cluster object list)
- averaging: subtomogram_average
"""

import os as _os
import sys as _sys

# the network is TensorFlow's (oneDNN on CPUs, DeepFinder's weights as they are): pin Keras to it, whatever
# KERAS_BACKEND says, unless Keras was already imported on another backend (then say so, not fail later).
# DEEPFINDER_UNSUP_KERAS_BACKEND=jax opts out, for training on an accelerator machine without TensorFlow
# (benchmarks/train_accelerator.py): the model, its losses and the simulator use Keras ops only.
_BACKEND = _os.environ.get("DEEPFINDER_UNSUP_KERAS_BACKEND", "tensorflow")
if "keras" in _sys.modules:
    import keras as _keras

    if _keras.backend.backend() != _BACKEND:
        raise ImportError(
            f"deepfinder_unsup runs Keras on {_BACKEND!r}, but Keras was already imported with the "
            f"{_keras.backend.backend()!r} backend: import deepfinder_unsup first, or unset "
            f"KERAS_BACKEND"
        )
_os.environ["KERAS_BACKEND"] = _BACKEND

from ._version import __version__  # noqa: E402

_LAZY = {
    "select_k": "cluster",
    "sweep_k": "cluster",
    "normalise_features": "cluster",
    "clustered_objl": "cluster",
    "subtomogram_average": "average",
    "read_xml": "io",
    "write_xml": "io",
    "extract_subtomograms": "extract",
    "iter_subtomograms": "extract",
    "load_subtomogram_files": "extract",
    "normalise": "volume",
    **{
        name: "io"
        for name in (
            "InputError",
            "read_dataset",
            "read_embeddings",
            "read_mrc",
            "read_objl",
            "read_shrec_locations",
            "read_shrec_model",
            "read_star",
            "write_dataset",
            "write_embeddings",
            "write_mrc",
            "write_objl",
            "write_star",
        )
    },
    "Embedder": "embed",
    "load_pretrained": "embed",
    "load_deepfinder_weights": "model.deepfinder",
    "build_encoder": "model.deepfinder",
    "build_classifier": "model.classifier",
    "embedding_model": "model.classifier",
}


__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    """Public names load their module on first use: `import deepfinder_unsup` (and the CLI's start) stays
    fast, and TensorFlow / scikit-learn load only when needed."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'deepfinder_unsup' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
