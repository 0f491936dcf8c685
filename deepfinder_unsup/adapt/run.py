"""``adapt``: the picks embedded, the method's rounds trained and scored, the guard's choice written with what was
measured in the model's card."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from ..cluster import select_k, stability, sweep_k
from ..embed import resolve_precision
from ..io.files import InputError
from ..log import logger
from ..model.card import load_model, save_model
from ..model.classifier import embedding_model, leading_convolutions, with_dtype_policy
from ..threads import numeric_threads_on_free_cores
from ..volume import normalise, wedge_symmetric_views
from .copies import require_augmentation
from .features import NEIGHBOURS, features_of, mean_of_views, neighbourhood_overlap, unit_embeddings
from .guard import (
    NEIGHBOURHOOD_WARNING,
    STABILITY_TOLERANCE,
    AdaptReport,
    collapsed,
    label_free_score,
    silhouette_over_k,
)
from .methods import ANCHOR_WEIGHT, DOMAIN_WEIGHT, METHOD_OF, METHODS, Method, Setup
from .objectives import DISPERSION
from .simulated import anchor_structures


def training_precision(precision: str) -> str:
    """'float32' or 'bfloat16' ('auto': bfloat16 where the CPU has bf16 arithmetic, as ``embed``)."""
    chosen = resolve_precision(precision)
    if chosen not in ("float32", "bfloat16"):
        raise InputError(f"adapt trains in float32 or bfloat16, not {chosen!r}")
    return chosen


def _check_settings(
    method: str,
    n_picks: int,
    rounds: int,
    steps: int,
    batch_size: int,
    neighbours: int,
    noise: float,
    dispersion: float,
    anchor_weight: float,
    one_way_weight: float,
    augmentation: str,
    k: int | None,
) -> None:
    """One clear error for a setting outside its range, before any embedding."""
    if n_picks < 20:
        raise InputError(f"{n_picks} sub-tomograms: adaptation needs at least 20")
    if rounds < 1 or steps < 1 or batch_size < 1:
        raise InputError(f"rounds = {rounds}, steps = {steps}, batch_size = {batch_size}: each must be at least 1")
    if not 0.0 <= noise <= 4.0:
        raise InputError(f"noise = {noise}: must be between 0 and 4 (a fraction of each pick's spread)")
    if not 0.0 <= dispersion <= 10.0:
        raise InputError(f"dispersion = {dispersion}: must be between 0 and 10")
    if not 0.0 <= anchor_weight <= 100.0:
        raise InputError(f"anchor_weight = {anchor_weight}: must be between 0 and 100")
    if not 0.0 < one_way_weight <= 1.0:
        raise InputError(f"one_way_weight = {one_way_weight}: must be above 0 and at most 1")
    if method in ("neighbours", "anchored") and not 1 <= neighbours < n_picks:
        raise InputError(f"neighbours = {neighbours}: must be at least 1 and below the {n_picks} picks")
    if k is not None and not 2 <= k < n_picks:
        raise InputError(f"k = {k}: must be at least 2 and below the {n_picks} picks")
    require_augmentation(augmentation)


def _record_settings(report: AdaptReport, s: Setup, method: str, steps: int, freeze_convs: int) -> None:
    """The settings that shaped the method, in the report (0 / defaults where a method does not use one)."""
    report.steps, report.batch_size = int(steps), int(s.batch_size)
    if method in ("neighbours", "anchored"):
        report.neighbours = int(s.neighbours)
        report.noise = float(s.noise)
        report.one_way_weight = float(s.one_way_weight)
        report.dispersion = float(s.dispersion)
    if method == "neighbours":
        report.augmentation = s.augmentation  # ``anchored`` augments as training does, whatever this says
    if method == "anchored":
        report.anchor_weight = float(s.anchor_weight)
    if method == "dann":
        report.domain_weight = DOMAIN_WEIGHT
    report.freeze_convs = int(freeze_convs)


@dataclass
class _Best:
    """The round the guard keeps so far (the input's weights and scores before any round)."""

    score: float
    weights: list
    stability: float
    overlap: float = 1.0


def _run_rounds(
    trainer: Method,
    s: Setup,
    report: AdaptReport,
    before: np.ndarray,
    labels: np.ndarray,
    ks: range,
    spread: float,
    best: _Best,
    guard: bool,
    tta: bool,
    on_round: Callable[[int, np.ndarray], None] | None,
) -> _Best:
    """Train round after round; each is scored (silhouette, stability, neighbourhoods kept) and recorded, a
    collapsed one ends the adaptation; returns the guard's pick: the best silhouette among the rounds whose
    stability holds (a round with a higher silhouette but a broken partition does not hide an earlier round that
    passes both; docs/adaptation.md)."""
    bank = before  # the features the neighbours are found in, renewed each round
    for r in range(s.rounds):
        loss = trainer.fit_round(r, bank, labels)
        feats = features_of(s.network, s.vols, tta=tta)
        if on_round is not None:
            on_round(r + 1, feats)
        score, new_labels = label_free_score(feats, s.k, s.seed)
        why = collapsed(feats, new_labels, spread)
        report.rounds.append(
            {
                "round": r + 1,
                "loss": round(loss, 4),
                "silhouette": round(score, 4),
                "silhouette_over_k": round(silhouette_over_k(feats, ks, s.seed), 4),
                "neighbourhood_kept": round(neighbourhood_overlap(before, feats, s.neighbours), 4),
                "stop": why,
            }
        )
        logger.info(f"  round {r + 1}: loss {loss:.3f}, silhouette {score:.3f}" + (f", stopped: {why}" if why else ""))
        if why:
            break
        round_stability = stability(feats, s.k, s.seed)
        report.rounds[-1]["stability"] = round(round_stability, 4)
        holds = round_stability >= report.stability_before - STABILITY_TOLERANCE
        if score > best.score and (holds or not guard):
            best = _Best(score, [w.copy() for w in s.network.get_weights()], round_stability)
            best.overlap = report.rounds[-1]["neighbourhood_kept"]
        labels = new_labels
        bank = feats
    return best


@numeric_threads_on_free_cores()  # the guard's k-means and spectra on the idle cores only: see threads.py
def adapt(
    model_path: str | Path,
    subtomograms: np.ndarray,
    out: str | Path,
    method: str = "neighbours",
    rounds: int = 3,
    steps: int = 100,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    k: int | None = None,
    seed: int = 0,
    source: str = "",
    overwrite: bool = False,
    structures: list[str] | None = None,
    guard: bool = True,
    precision: str = "auto",
    on_round: Callable[[int, np.ndarray], None] | None = None,
    tta: bool = True,
    neighbours: int | None = None,
    noise: float = 0.0,
    one_way_weight: float = 1.0,
    dispersion: float = DISPERSION,
    anchor_weight: float = ANCHOR_WEIGHT,
    freeze_convs: int = 0,
    augmentation: str = "flip",
) -> AdaptReport:
    """Adapt the model at ``model_path`` to ``subtomograms`` (N, B, B, B) at its box and voxel size; write the
    adapted model (or, when the label-free score does not improve, the input model unchanged) to ``out``.

    ``guard=False`` (for benchmarks: what the guard refused) writes the best round by silhouette whatever the
    scores say; the report's ``guard_passed`` still says whether the guard would have kept it. ``precision``
    'bfloat16' trains and embeds in bf16 arithmetic (float32 weights; 'auto', the default: bf16 where the CPU
    has it, as ``embed``); the written model is float32 either way. ``on_round(r, features)`` sees each
    round's unit features (benchmarks score them against labels). ``tta``: every feature adapt computes (the
    neighbours, the label-free scores, ``on_round``'s) is the mean over the four wedge-symmetric views, as
    ``embed --tta`` computes them (the default: +0.066 mean best V on four held-out microscopes against +0.047
    without, docs/adaptation.md); the card records it and ``Embedder`` follows the card. ``neighbours``: how
    many nearest neighbours each pick is pulled towards (method ``neighbours``; AaD's K; None: ``NEIGHBOURS``, or
    one fewer than the picks when they are fewer). ``noise`` (method ``neighbours``): each training copy of a pick
    gets another pick's phase-randomised noise at up to this fraction of its spread (``with_own_spectrum_noise``),
    so a noisier copy is pulled to the same neighbours as the clean pick; 0 adds none. ``one_way_weight`` (method
    ``neighbours``): the weight of a neighbour that does not count the pick among its own nearest, against 1 for a
    mutual one (``neighbour_targets``). ``dispersion``: the weight of the push away from the batch's other picks
    (``NeighbourAttractionLoss``; AaD's lambda). ``anchor_weight`` (method ``anchored``): the weight of CosFace on
    the simulated sub-tomograms of the model's own classes against 1 for the neighbours' pull; ``structures``
    names them (default: the model's classes made by code, ``anchor_structures``). ``freeze_convs``: the encoder's
    first N of 8 convolutions are not trained (``train --freeze-convs``: fewer weights to move on a few hundred
    picks, and a cheaper step). ``augmentation`` (method ``neighbours``): the training copies' ``augmented``
    ('flip', the training augmentation; 'views', any of the four wedge-symmetric views)."""
    if method not in METHODS:
        raise InputError(f"unknown adaptation method {method!r}; choose from {', '.join(METHODS)}")
    t0 = time.time()
    precision = training_precision(precision)
    classifier, card, vols = _model_and_picks(model_path, subtomograms, precision)
    neighbours = min(NEIGHBOURS, len(vols) - 1) if neighbours is None else neighbours
    _check_settings(
        method,
        len(vols),
        rounds,
        steps,
        batch_size,
        neighbours,
        noise,
        dispersion,
        anchor_weight,
        one_way_weight,
        augmentation,
        k,
    )
    if method in ("anchored", "dann") and not structures:
        structures = anchor_structures(card["classes"])  # refused before any embedding when the model has none
    vols = normalise(vols)
    rng = np.random.default_rng(seed)
    network = embedding_model(classifier)
    for layer in leading_convolutions(network, freeze_convs):
        layer.trainable = False
    before, between_views = _input_features(network, vols, tta, neighbours)
    ks = range(2, min(16, len(vols) // 5))
    if k is None:
        per_k, _ = sweep_k(before, ks, seed=seed)
        k = select_k(per_k)
    score_before, labels = label_free_score(before, k, seed)
    spread = float(before.std(axis=0).sum())
    logger.info(f"adapt ({method}): {len(vols)} picks, k = {k}, silhouette before {score_before:.3f}")
    report = AdaptReport(
        method, len(vols), int(k), score_before, score_before, "input", source=source, precision=precision, tta=tta
    )
    s = Setup(
        classifier,
        network,
        card,
        vols,
        rng,
        int(k),
        rounds,
        steps,
        batch_size,
        learning_rate,
        seed,
        structures,
        neighbours,
        noise,
        one_way_weight,
        dispersion,
        anchor_weight,
        augmentation,
    )
    _record_settings(report, s, method, steps, freeze_convs)
    report.neighbourhood_between_views = round(between_views, 4)
    report.stability_before = report.stability_after = stability(before, k, seed)
    report.silhouette_over_k_before = round(silhouette_over_k(before, ks, seed), 4)
    input_weights = [w.copy() for w in network.get_weights()]
    start = _Best(score_before if guard else -np.inf, input_weights, report.stability_before)
    trainer = METHOD_OF[method](s, report)
    best = _run_rounds(trainer, s, report, before, labels, ks, spread, start, guard, tta, on_round)
    if best.score == -np.inf:  # unguarded, and the first round already collapsed: nothing to write but the input
        best = _Best(score_before, input_weights, report.stability_before)
    network.set_weights(best.weights)
    _record_verdict(report, best, best.weights is not input_weights, guard)
    report.seconds = round(time.time() - t0, 1)
    _warn_if_laid_out_anew(report, between_views, neighbours)
    if report.kept == "input":
        logger.warning(
            f"adapt: silhouette {score_before:.3f} -> {best.score:.3f}, stability {report.stability_before:.3f} -> "
            f"{report.stability_after:.3f}: not better on both; the input model is kept"
        )
        classifier, card = load_model(model_path)
    _write_adapted(classifier, card, report, model_path, out, overwrite)
    return report


def _model_and_picks(model_path, subtomograms, precision: str) -> tuple[keras.Model, dict, np.ndarray]:
    """The model to adapt (in ``precision``'s policy), its card and the picks as float32, refused unless they are
    (N, B, B, B) at the model's box."""
    classifier, card = load_model(model_path)
    if precision == "bfloat16":
        classifier = with_dtype_policy(classifier, "mixed_bfloat16")
    box = int(card["box_size"])
    vols = np.asarray(subtomograms, np.float32)
    if vols.ndim != 4 or vols.shape[1:] != (box, box, box):
        raise InputError(f"sub-tomograms have shape {vols.shape}; the model expects (N, {box}, {box}, {box})")
    return classifier, card, vols


def _input_features(network: keras.Model, vols: np.ndarray, tta: bool, neighbours: int) -> tuple[np.ndarray, float]:
    """The input model's unit features of the picks (the mean of the four wedge-symmetric views with ``tta``, one
    view without), and how far its own neighbourhoods move between one view and four: what a change the features
    should ignore does to them, the reference the adapted model's ``neighbourhood_kept`` is read against."""
    per_view = [unit_embeddings(network, view) for view in wedge_symmetric_views(vols)]
    four_views = mean_of_views(per_view)
    before = four_views if tta else per_view[0]
    return before, neighbourhood_overlap(four_views, per_view[0], neighbours)


def _record_verdict(report: AdaptReport, best: _Best, trained: bool, guard: bool) -> None:
    """The guard's verdict in the report: the kept round's scores, whether both label-free scores say better, and
    which model is written (``trained``: ``best`` is a round's, not the input's)."""
    report.score_after = best.score
    if trained:
        report.stability_after = best.stability  # of the same features: the kept round's own
    stable = report.stability_after >= report.stability_before - STABILITY_TOLERANCE
    improved = best.score > report.score_before and stable
    report.guard_passed = bool(improved)
    report.kept = "adapted" if improved or (not guard and trained) else "input"
    report.neighbourhood_kept = best.overlap if report.kept == "adapted" else 1.0


def _warn_if_laid_out_anew(report: AdaptReport, between_views: float, neighbours: int) -> None:
    if report.neighbourhood_kept < NEIGHBOURHOOD_WARNING * between_views:
        logger.warning(
            f"adapt: the adapted features keep {report.neighbourhood_kept:.0%} of the input model's "
            f"{neighbours} nearest neighbours of each pick, against {between_views:.0%} between one view of the "
            "picks and four: the picks were laid out anew, which the silhouette and the stability cannot check "
            "(on a design set infomax did this while its V-measure fell 0.11); compare the clusters' averages "
            "with the input model's before using it"
        )


def _write_adapted(classifier: keras.Model, card: dict, report: AdaptReport, model_path, out, overwrite: bool) -> None:
    """The model (float32, every layer trainable) with the report in its card."""
    card = {
        **card,
        "adaptation": {
            **asdict(report),
            "input_model": str(model_path),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    for layer in classifier.layers:
        layer.trainable = True
    # rebuilt, not cloned: infomax compiled the classifier itself, and a clone would carry Adam's state
    save_model(with_dtype_policy(classifier, "float32"), out, card, overwrite=overwrite)
