"""deepfinder-unsup: unsupervised classification of macromolecules in cryo-electron tomograms.

Moebel & Kervrann 2022 on DeepFinder (Moebel et al. 2021): DeepFinder's encoder + a fully connected head,
trained on simulated sub-tomograms, pruned to a 32-D embedding; real sub-tomograms are embedded and clustered.
The public API is re-exported here; TensorFlow is imported only by the functions that need it.
"""
from ._version import __version__
from .cluster import select_k, sweep_k
from .extract import extract_subtomograms, iter_subtomograms, load_subtomogram_files, normalise
from .io import (InputError, read_dataset, read_embeddings, read_mrc, read_objl, read_shrec_locations,
                 read_shrec_model, read_star, write_dataset, write_embeddings, write_mrc, write_objl,
                 write_star)

__all__ = ["__version__", "select_k", "sweep_k", "extract_subtomograms", "iter_subtomograms",
           "load_subtomogram_files", "normalise", "InputError", "read_dataset", "read_embeddings", "read_mrc",
           "read_objl", "read_shrec_locations", "read_shrec_model", "read_star", "write_dataset",
           "write_embeddings", "write_mrc", "write_objl", "write_star", "Embedder", "load_pretrained",
           "load_deepfinder_weights", "build_classifier", "embedding_model", "build_encoder"]

_LAZY = {"Embedder": "embed", "load_pretrained": "embed", "load_deepfinder_weights": "model.deepfinder",
         "build_encoder": "model.deepfinder", "build_classifier": "model.classifier",
         "embedding_model": "model.classifier"}


def __getattr__(name):
    """Keras-dependent names load TensorFlow on first use, so `import deepfinder_unsup` stays fast."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'deepfinder_unsup' has no attribute {name!r}")
