"""The embedder: f_theta as a scikit-learn transformer, sub-tomograms (N, B, B, B) -> (N, 32) float32.

``fit`` is a no-op (the network is trained elsewhere), ``transform`` runs batched inference through a
``tf.function`` (no XLA: slower on CPU), so it drops into a scikit-learn Pipeline. Inputs are checked against
the model's box and voxel size. Large inputs are streamed: :meth:`Embedder.transform_batches` takes an
iterator of batches (e.g. ``extract.iter_subtomograms``) and keeps only the output in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .extract import check_volumes, normalise
from .io.files import InputError
from .log import logger, progress
from .volume import wedge_symmetric_views

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
PRETRAINED_MODELS = {
    "shrec21": PRETRAINED_DIR / "f_theta_shrec21.keras",
    "general": PRETRAINED_DIR / "f_theta_general.keras",
}
DEFAULT_MODEL = "general"  # since session 4: better on the protocol and the built-in shapes (docs/model_card.md)
PRETRAINED_MODEL = PRETRAINED_MODELS[DEFAULT_MODEL]


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """A model file from a path, a shipped model's name (``shrec21``, ``general``) or None (the default)."""
    if model is None:
        return PRETRAINED_MODELS[DEFAULT_MODEL]
    if str(model) in PRETRAINED_MODELS:
        return PRETRAINED_MODELS[str(model)]
    return Path(model)


DEFAULT_TTA = True  # since session 37: the four views score higher on held-out structures (docs/benchmarks.md)


def default_tta(card: dict) -> bool:
    """The views ``Embedder(tta=None)`` uses for a model: as ``adapt`` tuned it (the card's adaptation record),
    else the four wedge-symmetric views (``DEFAULT_TTA``)."""
    adaptation = card.get("adaptation", {})
    return bool(adaptation["tta"]) if "tta" in adaptation else DEFAULT_TTA


class Embedder(TransformerMixin, BaseEstimator):
    """Sub-tomogram -> 32-D feature vector with a trained f_theta (default: the shipped pretrained model).

    Parameters: ``model_path`` (a ``.keras`` model file written by ``deepfinder-unsup train``; None = shipped
    model), ``batch_size``, ``precision`` ('float32', 'bfloat16': bf16 arithmetic on CPUs that have it, 'int8':
    OpenVINO on CPU, see ``deepfinder_unsup.int8``, or 'auto': bf16 where the hardware computes it natively),
    ``progress`` (a progress bar), ``tta`` (test-time augmentation: the mean embedding of each sub-tomogram and
    its three 180 degree rotations that keep the missing wedge, ``volume.wedge_symmetric_views``; 4x the time,
    less orientation noise in the features: docs/benchmarks.md; None, the default: as ``adapt`` tuned the model
    where its card says, else on; False: one view, the network's own output). ``tta_`` is the resolved choice.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        batch_size: int = 64,
        precision: str = "float32",
        progress: bool = False,
        tta: bool | None = None,
    ):
        self.model_path = model_path
        self.batch_size = batch_size
        self.precision = precision
        self.progress = progress
        self.tta = tta

    # -- model --------------------------------------------------------------------------------------------
    def _resolved_path(self) -> Path:
        return resolve_model_path(self.model_path)

    def _network(self):
        key = (str(self._resolved_path()), self.precision)
        if getattr(self, "_loaded_key", None) != key:
            precision = resolve_precision(self.precision)
            self.card_, self.embed_fn_ = _load_embedding_function(self._resolved_path(), precision)
            self._loaded_key = key
        self.tta_ = bool(self.tta) if self.tta is not None else default_tta(self.card_)
        return self.embed_fn_

    @property
    def card(self) -> dict:
        self._network()
        return self.card_

    @property
    def voxel_size(self) -> float:
        return float(self.card["voxel_size"])

    @property
    def box_size(self) -> int:
        return int(self.card["box_size"])

    # -- scikit-learn API ----------------------------------------------------------------------------------
    def fit(self, X=None, y=None):
        """No-op (f_theta is trained by ``deepfinder_unsup.train``); loads the model, returns self."""
        self._network()
        return self

    def transform(self, X: np.ndarray, voxel_size: float | None = None) -> np.ndarray:
        """Embeddings (N, 32) float32 of sub-tomograms ``X`` (N, B, B, B), normalised here per volume."""
        X = np.asarray(X)
        self.check_input(X.shape, voxel_size)
        n = len(X)
        batches = (X[i : i + self.batch_size] for i in range(0, n, self.batch_size))
        return self.transform_batches(batches, n_total=n)

    def transform_batches(self, batches: Iterable[np.ndarray], n_total: int | None = None) -> np.ndarray:
        """Embeddings of an iterator of batches (b, B, B, B); memory holds one batch plus the output."""
        fn = self._network()
        out = []
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        done = 0
        with progress(total=n_total, desc="embed", unit="subtomo", enabled=self.progress) as bar:
            for batch in _rebatch(batches, self.batch_size):
                self.check_input(batch.shape)
                check_volumes(batch, "embed", [f"sub-tomogram {done + i}" for i in range(len(batch))])
                done += len(batch)
                out.append(self._embed_batch(fn, normalise(batch)))
                bar.update(len(batch))
        dim = int(self.card.get("embedding_dim", 32))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    def _embed_batch(self, fn, batch: np.ndarray) -> np.ndarray:
        """One normalised batch through the network; with ``tta`` the mean over the wedge-symmetric views (of
        the unit vectors for a model whose features are compared by angle)."""
        if not self.tta_:
            return np.asarray(fn(batch[..., None]))
        by_angle = self.card.get("embedding_geometry") == "cosine"
        embs = []
        for view in wedge_symmetric_views(batch):
            emb = np.asarray(fn(np.ascontiguousarray(view)[..., None]), np.float32)
            if by_angle:
                emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            embs.append(emb)
        total = embs[0]
        for emb in embs[1:]:
            total = total + emb  # in the views' order, as before: the same float32 sums
        return total / 4.0

    def check_input(self, shape, voxel_size: float | None = None) -> None:
        """Raise InputError when the box or voxel size differs from the model's, saying what to do."""
        box = self.box_size
        if len(shape) != 4 or tuple(shape[1:]) != (box, box, box):
            raise InputError(
                f"sub-tomograms have shape {tuple(shape)}, the model expects (N, {box}, {box}, {box}):"
                f" extract them with box_size={box} (CLI: embed extracts at the model's box size)"
            )
        if voxel_size is not None and abs(voxel_size - self.voxel_size) > 1e-3 * self.voxel_size:
            raise InputError(
                f"sub-tomograms are at {voxel_size:g} Å/voxel, the model expects {self.voxel_size:g}"
                f" Å: resample them (extract_subtomograms(..., voxel_size={self.voxel_size:g}) does it"
                f", and the CLI resamples automatically)"
            )


def _rebatch(batches: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Re-cut an iterator of arrays into batches of exactly ``size`` (the last may be smaller).

    Keeping one batch shape avoids re-tracing the tf.function for every odd size.
    """
    pending: list[np.ndarray] = []
    count = 0
    for batch in batches:
        pending.append(np.asarray(batch, np.float32))
        count += len(batch)
        while count >= size:
            whole = np.concatenate(pending)
            yield whole[:size]
            rest = whole[size:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield np.concatenate(pending)


def _load_embedding_function(path: Path, precision: str):
    """(card, callable x -> embeddings) for a model file; bf16 rebuilds the network under mixed precision."""
    from ._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()

    from .model.card import load_model
    from .model.classifier import embedding_model, with_dtype_policy

    if not path.exists():
        if path in PRETRAINED_MODELS.values():
            raise FileNotFoundError(f"{path}: the shipped pretrained model is missing from this installation")
        raise FileNotFoundError(f"{path}: model file not found")
    model, card = load_model(path)
    emb = embedding_model(model)
    if precision == "int8":
        from .int8 import int8_embedding_function

        return card, int8_embedding_function(path, emb, card)
    if precision == "bfloat16":
        emb = with_dtype_policy(emb, "mixed_bfloat16")
    elif precision != "float32":
        raise ValueError(f"precision must be 'float32', 'bfloat16' or 'int8', got {precision!r}")

    @tf.function(reduce_retracing=True, jit_compile=False)
    def run(x):
        return tf.cast(emb(x, training=False), tf.float32)

    return card, run


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX-BF16), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """'auto' -> 'bfloat16' on hardware with native bf16 (a GPU, AVX-512 BF16, AMX), else 'float32' (logged)."""
    if precision != "auto":
        if precision not in ("float32", "bfloat16", "int8"):
            raise InputError(f"precision must be auto, float32, bfloat16 or int8, got {precision!r}")
        return precision
    if cpu_has_bf16():
        chosen, why = "bfloat16", "the CPU has AVX-512 BF16 / AMX"
    elif _gpu_visible():
        chosen, why = "bfloat16", "a GPU is visible"
    else:
        chosen, why = "float32", "no native bf16 on this CPU"
    logger.debug(f"precision auto: {chosen} ({why})")
    return chosen


def _gpu_visible() -> bool:
    from ._quiet import import_tensorflow_quietly

    return bool(import_tensorflow_quietly().config.list_physical_devices("GPU"))


def central_slices(volumes: np.ndarray) -> np.ndarray:
    """Central xy and xz slices (N, 2, B, B) of normalised ``[z, y, x]`` volumes, float16 (report galleries)."""
    c = volumes.shape[1] // 2
    return np.stack([volumes[:, c], volumes[:, :, c]], axis=1).astype(np.float16)


def embed_tomograms(
    embedder: Embedder, tomograms, objl, border: str = "skip", tomogram_voxel_size: float | None = None
) -> tuple[np.ndarray, list, np.ndarray]:
    """Stream particles from tomograms through the embedder at the model's box and voxel size.

    Returns (embeddings (N, 32), object list of the embedded particles, central slices (N, 2, B, B)).
    Memory: one batch of sub-tomograms plus the outputs, whatever the number of particles.
    """
    from .extract import iter_subtomograms

    kept, slices = [], []

    def batches():
        for batch, batch_objl in iter_subtomograms(
            tomograms, objl, embedder.box_size, embedder.voxel_size, embedder.batch_size, border, tomogram_voxel_size
        ):
            kept.extend(batch_objl)
            slices.append(central_slices(batch))
            yield batch

    emb = embedder.transform_batches(batches(), n_total=len(objl))
    box = embedder.box_size
    return emb, kept, np.concatenate(slices) if slices else np.zeros((0, 2, box, box), np.float16)


def load_pretrained(name: str = DEFAULT_MODEL, **kwargs) -> Embedder:
    """A shipped f_theta by name, ready to ``transform``; offline. ``general`` (the default: hundreds of
    simulated structures, docs/model_card.md) or ``shrec21`` (the paper's 13 SHREC'21 classes); ``kwargs`` go to
    :class:`Embedder` (``batch_size``, ``precision``, ``tta``, ...)."""
    if name not in PRETRAINED_MODELS:
        raise InputError(f"no shipped model named {name!r}; choose from {', '.join(sorted(PRETRAINED_MODELS))}")
    return Embedder(model_path=name, **kwargs).fit()
