"""What a training run is asked (``TrainConfig``), checked before any work: one clear error for a setting the data
or the other settings cannot honour; the arithmetic and the checkpoint criterion it resolves to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..embed import resolve_precision
from ..io.files import InputError
from ..log import logger
from ..simulate.keras_source import REPLAY_LAG, fresh_companion_counts, fresh_mirror_pairs, fresh_pairs_per_batch


@dataclass
class TrainConfig:
    head: str | None = None  # None: the init model's (its card), else 'flatten' (the paper's)
    epochs: int = 20
    steps_per_epoch: int | None = None  # default: one pass over the training set
    batch_size: int = 64
    learning_rate: float = 1e-4  # constant rate, or the peak of the warm-up + cosine schedule
    lr_schedule: str = "constant"  # 'constant' (the paper) or 'cosine' (linear warm-up, cosine decay)
    warmup_steps: int = 200
    loss: str = "ce"  # 'ce' (the paper), 'cosface' or 'arcface' (see model.losses)
    margin: float = 0.15
    scale: float = 24.0
    focal_gamma: float = 0.0  # the class loss times (1 - p_true) ** gamma (0: the plain loss)
    precision: str = "float32"  # 'float32' or 'mixed_bfloat16' (the saved model is float32 either way)
    deepfinder_weights: str | None = None
    init_model: str | None = None  # a .keras model (or a shipped model's name) whose layers start training
    freeze_encoder: bool = False
    freeze_convs: int = 0  # the encoder's first N convolutions (of 8) kept as they start: fewer gradients per step
    patience: int = 5
    seed: int = 0
    max_minutes: float | None = None  # stop cleanly after this wall time
    max_shift: int = 2
    monitor_data: str | None = None  # labelled data set of classes NOT trained on: k-means V-measure per epoch
    select_by: str = "val_loss"  # checkpoint criterion: 'val_loss' or 'monitor_v_measure'
    workers: int = 0  # on-the-fly simulation: processes making batches (0: in the main one)
    binding_weight: float = 0.0  # weight of the binding-state loss (0: no binding output)
    shape_weight: float = 0.0  # weight of the shape descriptors' regression (0: no shape output)
    view_weight: float = 0.0  # weight of the paired-view consistency loss (0: none; batches of pairs otherwise)
    contrast_weight: float = 0.0  # weight of the paired contrastive loss (0: none; batches of same-class pairs)
    temperature: float = 0.1  # of the contrastive loss
    map_weight: float = 1.0  # on-the-fly simulation: classes from map files drawn this many times as often
    negative_weight: float = 1.0  # on-the-fly simulation: the negatives (no central particle) likewise
    keep_epochs: bool = False  # also write every epoch's model, carded, as epoch_NNN.keras (to choose one later)
    reuse: int = 1  # on-the-fly simulation: each simulated batch trained on this many times (in other views)
    fresh_share: float = 0.0  # with the contrastive loss: share of pairs of procedural structures drawn once
    fresh_mass_band: float = 0.0  # with fresh_share: a batch's drawn-once structures within this ln mass ratio
    fresh_mirrors: float = 0.0  # with fresh_share: share of drawn-once structures beside their own mirror image
    fresh_bound: float = 0.0  # with fresh_share: share of drawn-once structures beside their membrane-bound copy
    contrast_memory: int = 0  # with fresh_share: drawn-once embeddings kept as the contrastive loss's negatives
    one_acquisition_per_batch: bool = False  # on-the-fly simulation: a batch's sub-tomograms share one microscope
    one_acquisition_per_view: bool = False  # contrastive pairs: each view its own microscope, shared by its half
    # flatten_conv* heads: share of samples losing the flatten path in training (1: removed); None: the init model's
    flatten_drop: float | None = None
    stall_minutes: float = 10.0  # end the run (exit 4) when no training step finishes for this long (dead workers)


def training_precision(requested: str) -> str:
    """The Keras policy for ``requested``: 'auto' is 'mixed_bfloat16' where bf16 is native (AVX-512 BF16, AMX, a
    GPU), else 'float32'; an explicit 'mixed_bfloat16' where bf16 would be emulated gets a warning (session 36, an
    AMD EPYC with AVX2 only: about one step a minute in bf16, beside other work, against 2.5 s in float32)."""
    if requested not in ("auto", "float32", "mixed_bfloat16"):
        raise InputError(f"training precision must be 'auto', 'float32' or 'mixed_bfloat16', got {requested!r}")
    if requested == "auto":
        return "mixed_bfloat16" if resolve_precision("auto") == "bfloat16" else "float32"
    if requested == "mixed_bfloat16" and resolve_precision("auto") != "bfloat16":
        logger.warning(
            "training in bf16 on a processor without native bf16 (no AVX-512 BF16, AMX or GPU): it is emulated and "
            "many times slower than float32; use --precision float32 or auto"
        )
    return requested


def check_config(config: TrainConfig, simulation) -> None:
    """One clear error for a setting the training data or the other settings cannot honour, before any work."""
    if config.binding_weight > 0 and simulation is None:  # a data set file does not say how each class binds
        raise InputError("the binding-state loss needs structures simulated on the fly (--structures)")
    if config.shape_weight > 0 and simulation is None:  # the descriptors come from the simulated structures
        raise InputError("the shape-descriptor loss needs structures simulated on the fly (--structures)")
    if config.view_weight > 0 and simulation is None:
        raise InputError("the paired-view loss needs structures simulated on the fly (--structures)")
    if config.map_weight != 1.0 and simulation is None:  # a data set file's classes are drawn evenly
        raise InputError("--map-weight needs structures simulated on the fly (--structures)")
    if config.negative_weight != 1.0 and simulation is None:
        raise InputError("--negative-weight needs structures simulated on the fly (--structures)")
    if config.view_weight > 0 and (config.batch_size < 2 or config.batch_size % 2):
        raise InputError(f"the paired-view loss needs an even batch size (pairs), got {config.batch_size}")
    if config.contrast_weight > 0:
        _check_contrast(config, simulation)
    _check_reuse(config, simulation)
    _check_fresh_share(config)
    _check_acquisition_per_view(config)
    _check_numbers(config)


def _check_acquisition_per_view(config: TrainConfig) -> None:
    """One acquisition per view splits the contrastive loss's pairs between two microscopes: it needs those pairs."""
    if not config.one_acquisition_per_view:
        return
    if config.one_acquisition_per_batch:
        raise InputError("--one-acquisition-per-view and --one-acquisition-per-batch exclude each other: choose one")
    if config.contrast_weight <= 0 or config.view_weight > 0:
        raise InputError(
            "--one-acquisition-per-view draws each view of the contrastive loss's pairs with its own microscope: it "
            "needs --contrast-weight (and no --view-weight, whose pairs are views of one box)"
        )


def _check_numbers(config: TrainConfig) -> None:
    """Settings out of their range (a negative learning rate climbs the loss; a zero scale learns nothing)."""
    checks = [
        (0 < config.learning_rate < np.inf, f"--learning-rate must be positive, got {config.learning_rate}"),
        (config.epochs >= 1 and config.batch_size >= 1, "--epochs and --batch-size must be at least 1"),
        (config.steps_per_epoch is None or config.steps_per_epoch >= 1, "--steps-per-epoch must be at least 1"),
        (config.warmup_steps >= 0, f"--warmup-steps must be 0 or more, got {config.warmup_steps}"),
        (config.patience >= 0, f"--patience must be 0 or more, got {config.patience}"),
        (config.max_minutes is None or config.max_minutes > 0, f"--max-minutes must be positive: {config.max_minutes}"),
        (config.stall_minutes > 0, f"--stall-minutes must be positive, got {config.stall_minutes}"),
        (0 < config.scale < np.inf, f"--scale must be positive, got {config.scale}"),
        (0 <= config.margin < 1, f"--margin must be from 0 to below 1, got {config.margin}"),
        (0 <= config.focal_gamma < np.inf, f"--focal-gamma must be 0 or more, got {config.focal_gamma}"),
        (0 <= (config.flatten_drop or 0) <= 1, f"--flatten-drop must be from 0 to 1, got {config.flatten_drop}"),
        (
            not config.flatten_drop or str(config.head).startswith("flatten_conv"),
            f"--flatten-drop needs a head with pose-free branches (flatten_conv...), got --head {config.head}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def _check_fresh_share(config: TrainConfig) -> None:
    """Structures drawn once teach through the contrastive loss only: it must be on."""
    if not 0.0 <= config.fresh_share <= 1.0:
        raise InputError(f"--fresh-structures must be a share between 0 and 1, got {config.fresh_share}")
    if config.fresh_share > 0 and config.contrast_weight <= 0:
        raise InputError("--fresh-structures needs the contrastive loss (--contrast-weight): nothing else sees them")
    n_fresh = fresh_pairs_per_batch(config.batch_size // 2, config.fresh_share)
    if not 0 <= config.fresh_mass_band < np.inf:
        raise InputError(f"--fresh-mass-band must be a log mass ratio of 0 or more, got {config.fresh_mass_band}")
    if config.fresh_mass_band and n_fresh < 2:
        raise InputError(
            "--fresh-mass-band draws a batch's structures drawn once close in mass: it needs --fresh-structures with "
            f"at least two such pairs a batch (batch {config.batch_size}, share {config.fresh_share})"
        )
    if not 0.0 <= config.fresh_mirrors <= 1.0:
        raise InputError(f"--fresh-mirrors must be a share between 0 and 1, got {config.fresh_mirrors}")
    if config.fresh_mirrors and not fresh_mirror_pairs(n_fresh, config.fresh_mirrors):
        raise InputError(
            f"--fresh-mirrors {config.fresh_mirrors:g} of {n_fresh} structures drawn once a batch (batch "
            f"{config.batch_size}, --fresh-structures {config.fresh_share:g}) is not one structure beside its mirror"
        )
    if not 0.0 <= config.fresh_bound <= 1.0:
        raise InputError(f"--fresh-bound must be a share between 0 and 1, got {config.fresh_bound}")
    if config.fresh_bound and not fresh_companion_counts(n_fresh, config.fresh_mirrors, config.fresh_bound)[1]:
        raise InputError(
            f"--fresh-bound {config.fresh_bound:g} of {n_fresh} structures drawn once a batch (batch "
            f"{config.batch_size}, --fresh-structures {config.fresh_share:g}, --fresh-mirrors "
            f"{config.fresh_mirrors:g}) is not one structure beside its membrane-bound copy"
        )
    if config.contrast_memory < 0:
        raise InputError(f"--contrast-memory must not be negative, got {config.contrast_memory}")
    if config.contrast_memory and not fresh_pairs_per_batch(config.batch_size // 2, config.fresh_share):
        raise InputError(
            "--contrast-memory keeps structures drawn once: it needs --fresh-structures with at least one such pair a "
            f"batch (batch {config.batch_size}, share {config.fresh_share})"
        )
    rows = contrast_memory_of(config)[1]
    if config.contrast_memory and config.contrast_memory < rows:
        raise InputError(f"--contrast-memory must hold at least one batch's {rows} drawn-once rows")


def _check_reuse(config: TrainConfig, simulation) -> None:
    """Reusing batches needs on-the-fly simulation (a data set file is reused by its epochs already)."""
    if int(config.reuse) != config.reuse or config.reuse < 1:
        raise InputError(f"--reuse must be a whole number of at least 1, got {config.reuse}")
    if config.reuse > 1 and simulation is None:
        raise InputError("--reuse needs structures simulated on the fly (--structures)")


def _check_contrast(config: TrainConfig, simulation) -> None:
    """The contrastive loss needs pairs of fresh draws: on-the-fly simulation, an even batch of at least 4."""
    if simulation is None:
        raise InputError("the contrastive loss needs structures simulated on the fly (--structures)")
    if config.view_weight > 0:
        raise InputError("the contrastive loss and the paired-view loss pair the batch differently: choose one")
    if config.batch_size < 4 or config.batch_size % 2:
        raise InputError(
            f"the contrastive loss needs an even batch size of at least 4 (pairs), got {config.batch_size}"
        )
    if not config.temperature > 0:
        raise InputError(f"the contrastive loss's temperature must be positive, got {config.temperature}")


def contrast_memory_of(config: TrainConfig) -> tuple[int, int, int]:
    """(memory, rows, delay) of the contrastive loss's cross-batch memory: the drawn-once rows of each batch's
    first half, usable once no later reuse of their batch can bring the same structures back."""
    if not config.contrast_memory:
        return (0, 0, 0)
    rows = fresh_pairs_per_batch(config.batch_size // 2, config.fresh_share)
    return (config.contrast_memory, rows, REPLAY_LAG * (config.reuse - 1))


def selection_mode(config: TrainConfig) -> str:
    """'max' for a monitor's V-measure, 'min' for the validation loss; refuses what cannot be selected by."""
    if config.select_by not in ("val_loss", "monitor_v_measure", "monitor_v_measure_cos"):
        raise InputError(
            f"select_by must be 'val_loss', 'monitor_v_measure' or 'monitor_v_measure_cos', got {config.select_by!r}"
        )
    if config.select_by.startswith("monitor") and not config.monitor_data:
        raise InputError(f"selecting by {config.select_by} needs a monitor data set (--monitor)")
    return "max" if config.select_by.startswith("monitor") else "min"
