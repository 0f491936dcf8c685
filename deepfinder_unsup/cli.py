"""The ``deepfinder-unsup`` command: thin wrappers that parse arguments, call the API and print.

Subcommands: simulate, simulate-tomogram, train, embed, cluster, average, demo, info. Errors in the user's input
print one line (``error: <file>: <problem>``) and exit with status 1 (usage errors: 2).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from ._version import __version__

USER_DESCRIPTION = (
    "Unsupervised classification of macromolecules in cryo-electron tomograms (Moebel & Kervrann 2022, on "
    "DeepFinder). Typical use: 'embed' your picks (DeepFinder XML or RELION STAR + tomograms) with the shipped "
    "model, 'cluster' the embeddings (scores, report, one object list per cluster), 'average' each cluster. "
    "Coordinates are tomogram voxels (x, y, z); sizes in voxels unless marked Å. "
    "Run 'deepfinder-unsup demo' for a 30-second tour."
)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--verbose", action="store_true", help="more messages, and TensorFlow's start-up messages")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only, no progress bars")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _weight(text: str) -> float:
    """A weight above 0 and at most 1."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {text}")
    return value


positive_int = _int_at_least(1)


def _add_alignment_search(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The averaging's search options (``average``, and ``cluster --average``)."""
    p.add_argument(
        "--rotations",
        type=positive_int,
        default=1000,
        help=prefix + "rotations of the global search (near-uniform over SO(3); the local refinement's grid is 4x "
        "finer); the time grows in proportion (default: 1000: neighbours about 23 degrees apart, 11 in the local grid)",
    )
    p.add_argument(
        "--iterations",
        type=positive_int,
        default=7,
        help=prefix + "alignment iterations, the first 3 global (default: 7)",
    )


def _add_particle_inputs(p: argparse.ArgumentParser) -> None:
    """Where the particles come from (embed, adapt): picks in tomograms, sub-tomogram files, a data set, copick."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--objl", help="DeepFinder XML object list of picks (with --tomograms)")
    src.add_argument("--star", help="RELION particles STAR file (with --tomograms)")
    src.add_argument("--subtomograms", help="folder or glob of sub-tomogram MRC files")
    src.add_argument("--dataset", help="data set file (simulate's dataset.h5)")
    src.add_argument("--copick", help="copick project configuration (picks and tomograms from it; with --object)")
    p.add_argument("--object", help="with --copick: the pickable object whose picks to use")
    p.add_argument("--user", help="with --copick: only picks of this user_id")
    p.add_argument("--session", help="with --copick: only picks of this session_id")
    p.add_argument("--runs", nargs="+", help="with --copick: only these runs (default: all)")
    p.add_argument("--tomo-type", help="with --copick: tomogram type (default: the first at the closest spacing)")
    p.add_argument("--tomograms", nargs="+", help="tomogram MRC files, indexed by tomo_idx")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it says something (not None, False or already in the help)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default is None
            or action.default is False
            or "default" in text
            or action.default is argparse.SUPPRESS
        ):
            return text
        return super()._get_help_string(action)


class _Subcommands:
    """Every subcommand gets its help as description and shows the defaults of its options."""

    def __init__(self, action):
        self.action = action

    def add_parser(self, name: str, help: str, **kwargs) -> argparse.ArgumentParser:  # noqa: A002
        kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
        return self.action.add_parser(name, help=help, formatter_class=_DefaultsFormatter, **kwargs)


def _add_simulate_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("simulate", help="simulate a labelled sub-tomogram data set")
    p.add_argument(
        "--structures",
        nargs="+",
        required=True,
        help="maps (.mrc), atomic models (.pdb/.cif), folders of them, 'builtin' or 'builtin:NAME'",
    )
    p.add_argument("--per-class", type=positive_int, required=True, help="sub-tomograms per class")
    p.add_argument("--out", required=True, help="output folder (dataset.h5, objects.xml, classes.csv)")
    p.add_argument("--config", help="JSON file of simulation parameters (see docs/simulation.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): simulate on that cluster")
    p.add_argument("--mrc", action="store_true", help="also write one MRC file per sub-tomogram")
    p.add_argument("--no-negative", action="store_true", help="no negative class (0)")
    p.add_argument(
        "--like",
        metavar="PATH",
        help="a tomogram (.mrc) or data set (.h5) to resemble: its missing wedge, low-pass and contrast polarity "
        "are estimated and imposed, the rest stays randomised (estimate in OUT/like.json)",
    )
    _add_common(p)


def _add_simulate_tomogram_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("simulate-tomogram", help="simulate a crowded tomogram with its object list")
    p.add_argument(
        "--structures", nargs="+", required=True, help="maps, atomic models, folders, builtin[:NAME] (as simulate)"
    )
    p.add_argument("--out", required=True, help="output folder (tomogram.mrc, objects.xml, particle_locations.txt)")
    p.add_argument(
        "--shape",
        nargs=3,
        type=_int_at_least(48),
        default=[96, 256, 256],
        metavar=("Z", "Y", "X"),
        help="tomogram size in voxels (each at least 48)",
    )
    p.add_argument(
        "--particles",
        type=positive_int,
        default=100,
        help="particles to place (fewer, with a warning, when the tomogram has no room left)",
    )
    p.add_argument("--membranes", type=_int_at_least(0), default=1, help="spherical vesicles to place")
    p.add_argument("--config", help="JSON file of simulation parameters")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_common(p)


def _add_train_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("train", help="train f_theta on simulated data sets, or on sub-tomograms simulated on the fly")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--train", help="training data set file (simulate's dataset.h5)")
    data.add_argument(
        "--structures",
        nargs="+",
        help="simulate training batches on the fly from these structures (same specs as simulate: "
        "files, folders, builtin, procedural:N[:SEED], membrane:PATH, SPEC@membrane)",
    )
    p.add_argument("--val", required=True, help="validation data set file, never used for training")
    p.add_argument("--out", required=True, help="output folder (model.keras, history.csv, figures)")
    p.add_argument("--deepfinder-weights", help="DeepFinder weight file to initialise the encoder")
    p.add_argument(
        "--head",
        choices=["flatten", "gap", "flatten_conv", "flatten_conv_wide"],
        help="default: the --init-model's head, else flatten. flatten: the paper's head; gap: global average "
        "pooling (fewer weights); flatten_conv: flatten plus "
        "two convolutions on the encoder's maps, pooled, added through a Dense that starts at zero (a flatten "
        "model given to --init-model starts as the same function); flatten_conv_wide: flatten_conv plus a wider "
        "branch (128 channels, then 256 at half the size), also through a Dense that starts at zero (the shipped "
        "general model given to --init-model starts as the same function)",
    )
    p.add_argument("--epochs", type=positive_int, default=20, help="maximum number of epochs")
    p.add_argument(
        "--steps-per-epoch", type=positive_int, default=None, help="batches per epoch (default: one pass over --train)"
    )
    p.add_argument("--freeze-encoder", action="store_true", help="train the head only (DeepFinder's encoder fixed)")
    p.add_argument(
        "--freeze-convs",
        type=int,
        default=0,
        metavar="N",
        help="keep the encoder's first N of 8 convolutions as they start (a bf16 step alone: 2: 1.80x, 4: 2.35x "
        "the rate; end to end on a 2-core CPU the simulator bounds it: docs/training_history.md, session 24)",
    )
    p.add_argument("--patience", type=_int_at_least(0), default=5, help="epochs without improvement before stopping")
    p.add_argument("--max-minutes", type=_positive_float, default=None, help="end within this wall time (minutes)")
    p.add_argument(
        "--stall-minutes",
        type=_positive_float,
        default=10.0,
        help="end the run (exit 4, --resume continues) when no training step finishes for this long, as when a "
        "simulating worker was killed in the middle of a batch (default: 10; an epoch's first step, which waits for "
        "the first simulated batches, may take 10 minutes whatever this says)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    p.add_argument(
        "--keep-epochs",
        action="store_true",
        help="also write every epoch's model with its own card (OUT/epoch_NNN.keras), to score and ship any of them",
    )
    p.add_argument("--monitor", help="labelled data set of classes not trained on: k-means V-measure per epoch")
    p.add_argument(
        "--select-by",
        choices=["val_loss", "monitor_v_measure", "monitor_v_measure_cos"],
        default="val_loss",
        help="checkpoint and early-stopping criterion",
    )
    p.add_argument(
        "--loss",
        choices=["ce", "cosface", "arcface"],
        default="ce",
        help="ce: the paper's cross-entropy; cosface/arcface: additive-margin softmax on the L2-normalised embedding",
    )
    p.add_argument(
        "--margin", type=_non_negative_float, default=0.15, help="margin of cosface / arcface (0 to below 1)"
    )
    p.add_argument("--scale", type=_positive_float, default=24.0, help="logit scale of cosface / arcface")
    p.add_argument(
        "--binding-weight",
        type=_non_negative_float,
        default=0.0,
        help="with --structures: weight of a second loss that teaches the embedding the binding state "
        "(free / on a membrane / transmembrane); 0 (default): none",
    )
    p.add_argument(
        "--map-weight",
        type=_positive_float,
        default=1.0,
        help="with --structures: draw each class made from a map or model file this many times as often as one "
        "made by code (procedural, builtin) or the negatives, so a list grown with procedural seeds keeps the "
        "real structures' share (default: 1, every class equally often)",
    )
    p.add_argument(
        "--view-weight",
        type=_non_negative_float,
        default=0.0,
        help="with --structures: half of each batch is a 180-degree view of the other half that keeps the missing "
        "wedge, and a loss of this weight asks each pair for the same embedding direction (what embed --tta "
        "averages over); 0 (default): none",
    )
    p.add_argument(
        "--contrast-weight",
        type=_non_negative_float,
        default=0.0,
        help="with --structures: half of each batch is other sub-tomograms of the other half's structures, and a "
        "supervised contrastive loss of this weight asks each to find its partner in the batch; 0 (default): none",
    )
    p.add_argument(
        "--temperature", type=_positive_float, default=0.1, help="temperature of the contrastive loss (default: 0.1)"
    )
    p.add_argument(
        "--fresh-structures",
        type=_non_negative_float,
        default=0.0,
        metavar="SHARE",
        help="with --contrast-weight: this share of each batch's pairs are of procedural structures drawn once "
        "(never a class, never seen again), learnt from by the contrastive loss alone; 0 (default): none",
    )
    p.add_argument(
        "--contrast-memory",
        type=int,
        default=0,
        metavar="N",
        help="with --fresh-structures: keep the last N embeddings of structures drawn once (no gradient) as more "
        "negatives of the contrastive loss, a cross-batch memory (thousands where a batch has tens); saved and "
        "resumed with the model; 0 (default): the batch only",
    )
    p.add_argument(
        "--reuse",
        type=int,
        default=1,
        help="with --structures: train on each simulated batch this many times, a few steps apart and each "
        "sub-tomogram turned by a random 180-degree rotation that keeps the missing wedge (more steps an hour "
        "where the simulator is the bound); 1 (default): every batch fresh",
    )
    p.add_argument("--learning-rate", type=_positive_float, default=1e-4, help="constant rate, or the schedule's peak")
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="constant (the paper) or linear warm-up + cosine decay over all epochs",
    )
    p.add_argument(
        "--warmup-steps",
        type=_int_at_least(0),
        default=200,
        help="with --lr-schedule cosine: linear warm-up steps",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="sub-tomograms per training step")
    p.add_argument(
        "--precision",
        choices=["auto", "float32", "mixed_bfloat16"],
        default="float32",
        help="training arithmetic (the saved model is float32 either way); auto: mixed_bfloat16 where the "
        "processor has native bf16 (AVX-512 BF16, AMX, a GPU), float32 elsewhere (bf16 is emulated there, far slower)",
    )
    p.add_argument("--init-model", help="start from this model's layers (a .keras file, or 'shrec21'/'general')")
    p.add_argument("--sim-config", help="with --structures: JSON simulation parameters (docs/simulation.md)")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="with --structures: processes simulating batches (0: in the training process)",
    )
    _add_common(p)


def _add_embed_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("embed", help="map sub-tomograms to 32-D features with f_theta")
    _add_particle_inputs(p)
    p.add_argument("--model", help="model file (default: the shipped pretrained model)")
    p.add_argument("--out", required=True, help="embeddings file (.h5)")
    p.add_argument("--voxel-size", type=_positive_float, help="voxel size (Å) of the inputs when their header says 0")
    p.add_argument(
        "--tomogram-size",
        nargs=3,
        type=int,
        metavar=("X", "Y", "Z"),
        help="tomogram size (voxels) for RELION 5 centred coordinates, when the MRC header is not the tomogram's",
    )
    p.add_argument(
        "--tomograms-star",
        help="RELION 4/5 tomograms.star: each tomogram's size and voxel size (default: the MRC headers)",
    )
    p.add_argument(
        "--border",
        choices=["skip", "pad"],
        default="pad",
        help="particles whose box crosses the tomogram border: pad (default: kept, filled with the mean, "
        "flagged border_padded) or skip (counted in the summary)",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="sub-tomograms per inference batch")
    p.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16", "int8"],
        default="auto",
        help="inference arithmetic; auto (default): bfloat16 where the processor has it (AVX-512 BF16, AMX, "
        "a GPU), float32 elsewhere; int8: OpenVINO on CPU (pip install 'deepfinder-unsup[fast]')",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation: the mean embedding of each particle and its three 180-degree rotations that "
        "keep the missing wedge (4x the time; higher V-measure and probe on held-out structures: "
        "docs/benchmarks.md). Default: on, or as adapt tuned the model where its card says; --no-tta: one view",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted embedding of picks from OUT.partial (same picks, tomograms and model)",
    )
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): embed the tomograms on that cluster")
    p.add_argument("--workers", type=positive_int, help="embed on a local Dask cluster of this many worker processes")
    _add_common(p)


def _add_cluster_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("cluster", help="k sweep, scores, per-cluster object lists and the report")
    p.add_argument("embeddings", help="embeddings file written by 'embed'")
    p.add_argument(
        "--k", help="k values: 2:15, or 3,5,8 (default: 2:15, cut below the number of picks for a small set)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--method",
        choices=["kmeans", "gmm", "agglomerative"],
        default="kmeans",
        help="clustering method (kmeans as in the paper)",
    )
    p.add_argument(
        "--normalise",
        choices=["l2", "none"],
        default="l2",
        help="l2 (default): cluster the directions of the embeddings (each scaled to length 1: measured better "
        "for every model, docs/benchmarks.md); none: the raw embeddings, as in the paper",
    )
    p.add_argument("--evaluate", action="store_true", help="score against the class_label of the picks")
    p.add_argument("--report-k", type=_int_at_least(2), help="k shown in the report (default: the selected k)")
    p.add_argument(
        "--rare",
        action="store_true",
        help="also look for rare structures: clusters with no k, as small as --min-cluster-size, in "
        "clusters_rare.xml/.star, and a dendrogram of over-clustered groups in the report",
    )
    p.add_argument(
        "--rare-method",
        choices=["coassociation", "hdbscan"],
        default="coassociation",
        help="with --rare: coassociation (default: what k-means at k = 10..30 agrees on, twice each; found the "
        "2 %% class most often on design sets, docs/adaptation.md) or hdbscan (dense regions)",
    )
    p.add_argument(
        "--min-cluster-size", type=_int_at_least(2), help="with --rare: smallest cluster (default: 1 %% of picks)"
    )
    p.add_argument("--no-report", action="store_true", help="skip figures and report.html")
    p.add_argument(
        "--average",
        action="store_true",
        help="also average each cluster of the report's k (averages_k{K}/, shown in the report; see 'average')",
    )
    p.add_argument("--dataset", help="with --average: the data set that was embedded (clusters of a data set)")
    _add_alignment_search(p, "with --average: ")
    p.add_argument(
        "--copick",
        help="copick configuration of the embedded picks: write one pick set per cluster of the report's k "
        "(user deepfinder-unsup, session k{K}-cluster{C})",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_common(p)


def _add_average_parser(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "average",
        help="reference-free average of each cluster, with a half-set FSC",
        description="Average the members of each cluster of a per-cluster object list (cluster's "
        "clusters_k{K}.xml): particles re-extracted from their source tomograms (or taken from --dataset), "
        "aligned without a reference over rotations and shifts, missing-wedge weighted; two half-sets refined "
        "independently give the resolution (FSC 0.143).",
    )
    p.add_argument("clusters", help="per-cluster object list written by 'cluster' (clusters_k{K}.xml)")
    p.add_argument("--out", required=True, help="output folder (cluster{C}_average.mrc, fsc.csv, averages.json)")
    p.add_argument("--dataset", help="the data set file that was embedded (clusters of simulated sub-tomograms)")
    p.add_argument("--clusters", dest="only", nargs="+", type=int, help="average only these clusters")
    p.add_argument(
        "--box",
        type=positive_int,
        help="box size in voxels, a multiple of 4 (default 40; with --dataset, the data set's own box)",
    )
    p.add_argument("--voxel-size", type=_positive_float, help="Å per voxel (default: the tomogram's own)")
    p.add_argument(
        "--tilt-range",
        nargs=2,
        type=float,
        default=[-60.0, 60.0],
        metavar=("MIN", "MAX"),
        help="tilt range of the tomograms in degrees, for the missing wedge (default -60 60)",
    )
    p.add_argument("--max-particles", type=positive_int, default=300, help="per cluster (a random subset beyond)")
    _add_alignment_search(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_common(p)


def _add_adapt_parser(sub: _Subcommands) -> None:
    p = sub.add_parser(
        "adapt",
        help="adapt f_theta to your own unlabelled sub-tomograms",
        description="Fine-tune f_theta on your own picks without labels (neighbours, the default: each pick "
        "pulled towards its nearest neighbours' features, pushed from the others; pseudolabel: k-means "
        "pseudo-labels refined over rounds; infomax: confident and diverse predictions, not recommended (0.11 "
        "lower V-measure on a design set); like: training data "
        "simulated with the missing wedge, low-pass and polarity estimated from your picks; coral: like, with the "
        "features' moments aligned to your picks'; anchored: neighbours, held by the model's own classes simulated "
        "around your acquisition; dann: the model's own classes simulated as for anchored, the features made "
        "alike on both by a domain classifier through gradient reversal). The silhouette and stability of k-means "
        "on the features are "
        "measured before and after; when they do not improve, the input model is written unchanged; a warning "
        "when the adapted features keep under 3/4 of the nearest neighbours that the input's own features keep between "
        "one view of each pick and four.",
    )
    _add_particle_inputs(p)
    p.add_argument("--model", help="model to adapt (default: the shipped model)")
    p.add_argument("--out", required=True, help="the adapted model file (.keras)")
    p.add_argument("--voxel-size", type=_positive_float, help="voxel size (Å) of the inputs when their header says 0")
    p.add_argument(
        "--method",
        choices=["pseudolabel", "infomax", "like", "coral", "neighbours", "anchored", "dann"],
        default="neighbours",
        help="adaptation family",
    )
    p.add_argument(
        "--structures",
        nargs="+",
        metavar="SPEC",
        help="--method like or coral: structures to simulate, as for simulate (default: procedural:200:0); "
        "--method anchored or dann: the model's own classes to simulate (default: those it has made by code)",
    )
    p.add_argument("--rounds", type=positive_int, default=3, help="training rounds (re-clustering between them)")
    p.add_argument("--steps", type=positive_int, default=100, help="training steps per round")
    p.add_argument(
        "--batch-size", type=positive_int, default=32, help="sub-tomograms a training step (less memory, noisier steps)"
    )
    p.add_argument("--k", type=_int_at_least(2), help="clusters for pseudo-labels and the score (default: label-free)")
    p.add_argument(
        "--neighbours",
        type=positive_int,
        help="--method neighbours or anchored: how many nearest neighbours each pick is pulled towards (AaD's K; "
        "default 30, or one fewer than the picks)",
    )
    p.add_argument(
        "--noise",
        type=_non_negative_float,
        default=0.0,
        help="--method neighbours: add to each training copy of a pick another pick's phase-randomised noise (your "
        "data's own noise colour and wedge) at up to this fraction of its spread, so noisier copies are pulled to "
        "the same neighbours (default 0: none)",
    )
    p.add_argument(
        "--one-way-weight",
        type=_weight,
        default=1.0,
        help="--method neighbours: how much a neighbour that does not count the pick among its own nearest pulls, "
        "against 1 for a mutual neighbour (default 1: all alike, as AaD; 0.1: NRC's reciprocal weighting)",
    )
    p.add_argument("--max-picks", type=positive_int, default=4000, help="a random subset beyond this many")
    p.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="arithmetic of the adaptation (auto, the default: bfloat16 where the CPU has it, 1.7x faster on an "
        "AMD EPYC); the model is written in float32",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="find the neighbours and score the clustering on the mean of four wedge-symmetric views of each pick "
        "(default; 4x the embedding time, +0.066 mean best V on four held-out microscopes against --no-tta's "
        "+0.047: docs/adaptation.md); the card records it and embed follows it",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_common(p)


def _add_demo_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on a simulated tomogram of built-in shapes")
    p.add_argument("--out", default="deepfinder_unsup_demo", help="output folder")
    p.add_argument("--model", help="model file (default: the shipped pretrained model)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_common(p)


def _add_info_parser(sub: _Subcommands) -> None:
    p = sub.add_parser("info", help="summarise a model file's card (--json: the whole card)")
    p.add_argument("model", nargs="?", help="model file or shipped name (general, shrec21; default: general)")
    p.add_argument("--json", action="store_true", help="print the whole card as JSON (every class, the full config)")
    _add_common(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepfinder-unsup", description=USER_DESCRIPTION)
    parser.add_argument("--version", action="version", version=__version__)
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True))
    _add_simulate_parser(sub)
    _add_simulate_tomogram_parser(sub)
    _add_train_parser(sub)
    _add_embed_parser(sub)
    _add_cluster_parser(sub)
    _add_average_parser(sub)
    _add_adapt_parser(sub)
    _add_demo_parser(sub)
    _add_info_parser(sub)
    return parser


def _plain_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) asked the command to stop (a KeyboardInterrupt: no `except Exception` swallows it)."""


_MAIN_PID = os.getpid()


def _stop_on_signal(signum, frame):
    if os.getpid() != _MAIN_PID:  # a forked worker (simulation pool, Keras data loader): die as it would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise Interrupted(signal.Signals(signum).name)


EXIT_GUARD_S = 30.0  # the program ends this long after its command did, whatever its exit waits for


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit status: 0 done, 1 bad input (one line on stderr naming the file and the
    problem), 2 bad usage (argparse), 3 an internal error, 4 a run stopped because its worker processes died
    (``train``'s watchdog), 130 / 143 interrupted (SIGINT / SIGTERM).

    Run as the program (``argv`` None: the console script, ``python -m``), the process then ends within
    :data:`EXIT_GUARD_S` with that status even if an exit handler hangs (:func:`watchdog.exit_within`)."""
    status = _run_command(argv)
    if argv is None:
        from .watchdog import exit_within

        exit_within(EXIT_GUARD_S, status)
    return status


def _run_command(argv: list[str] | None) -> int:
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    _refuse_options_that_do_nothing(parser, args)
    args.command_line = "deepfinder-unsup " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the records
    if not args.verbose:
        warnings.formatwarning = _plain_warning
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = signal.signal(signal.SIGTERM, _stop_on_signal) if _in_main_thread() else None
    try:
        configure_logging(verbose=args.verbose, quiet=args.quiet)
        return COMMANDS[args.command](args)
    except (_input_error(), OSError) as exc:
        if args.debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as exc:
        if args.debug:
            raise
        name = "SIGTERM" if isinstance(exc, Interrupted) and str(exc) == "SIGTERM" else "SIGINT"
        print(f"interrupted ({name}): outputs not completed were removed", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    except Exception as exc:  # a bug, not the user's fault: say so in one line
        if args.debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} (run again with --debug for the "
            f"traceback, and please report it)",
            file=sys.stderr,
        )
        return 3
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _refuse_options_that_do_nothing(parser: argparse.ArgumentParser, args) -> None:
    """A usage error (status 2) for an option given that this run does not read: it was ignored silently
    (``--tomograms`` beside ``--subtomograms``, ``--voxel-size`` beside ``--dataset``, a copick filter without
    ``--copick``, ``cluster --dataset`` without ``--average``), so the run did something other than what was asked."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for option, given, applies, to in _option_rules(args):
        if given is not None and not applies:  # the subcommand's usage line, as argparse's own errors
            commands.choices[args.command].error(f"{option} applies to {to} only; it would be ignored")


def _option_rules(args) -> list[tuple[str, object, bool, str]]:
    """(option, its value or None, whether this run reads it, what it belongs to) for the options of one mode."""
    if args.command == "cluster":
        return [
            ("--dataset", args.dataset, args.average, "--average"),
            ("--min-cluster-size", args.min_cluster_size, args.rare, "--rare"),
        ]
    if args.command == "train":
        return [
            ("--sim-config", args.sim_config, bool(args.structures), "--structures"),
            ("--workers", args.workers or None, bool(args.structures), "--structures"),
        ]
    if args.command not in ("embed", "adapt"):
        return []
    picks, copick = bool(args.objl or args.star), bool(args.copick)
    rules = [
        ("--tomograms", args.tomograms, picks, "picks (--objl / --star)"),
        ("--voxel-size", args.voxel_size, not (args.dataset or copick), "tomograms and sub-tomogram files"),
        ("--tomogram-size", getattr(args, "tomogram_size", None), bool(args.star), "--star"),
        ("--tomograms-star", getattr(args, "tomograms_star", None), bool(args.star), "--star"),
    ]
    return rules + [
        (f"--{name.replace('_', '-')}", getattr(args, name), copick, "--copick")
        for name in ("object", "user", "session", "runs", "tomo_type")
    ]


def _input_error() -> type[Exception]:
    from .io.files import InputError

    return InputError


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """The package's messages on stderr: INFO by default, DEBUG with --verbose, WARNING with --quiet."""
    import logging

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("deepfinder_unsup")
    logger.setLevel(level)
    if not any(getattr(h, "_deepfinder_unsup", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._deepfinder_unsup = True  # type: ignore[attr-defined]  # marks our handler: added once
        logger.addHandler(handler)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"


def _tf(args) -> None:
    from ._quiet import import_tensorflow_quietly

    import_tensorflow_quietly(args.verbose)


def cmd_simulate(args) -> int:
    from . import pipeline

    out = pipeline.simulate_to_folder(
        args.structures,
        args.per_class,
        args.out,
        config_path=args.config,
        seed=args.seed,
        workers=args.workers,
        write_mrc_files=args.mrc,
        negative=not args.no_negative,
        overwrite=args.overwrite,
        scheduler=args.scheduler,
        like=args.like,
    )
    print(f"wrote {out}")
    return 0


def cmd_simulate_tomogram(args) -> int:
    from . import pipeline

    paths = pipeline.simulate_tomogram_to_folder(
        args.structures,
        args.out,
        tuple(args.shape),
        args.particles,
        args.membranes,
        args.config,
        args.seed,
        args.overwrite,
    )
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_train(args) -> int:
    _tf(args)
    from . import pipeline
    from .train import TrainConfig, head_of_model

    out = Path(args.out)
    if (out / "model.keras").exists() and not (args.overwrite or args.resume):
        raise FileExistsError(f"{out / 'model.keras'}: file exists; pass --overwrite or --resume")
    cfg = TrainConfig(
        head=args.head or head_of_model(args.init_model),
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        loss=args.loss,
        margin=args.margin,
        scale=args.scale,
        precision=args.precision,
        deepfinder_weights=args.deepfinder_weights,
        init_model=args.init_model,
        freeze_encoder=args.freeze_encoder,
        freeze_convs=args.freeze_convs,
        patience=args.patience,
        seed=args.seed,
        max_minutes=args.max_minutes,
        stall_minutes=args.stall_minutes,
        monitor_data=args.monitor,
        select_by=args.select_by,
        workers=args.workers,
        binding_weight=args.binding_weight,
        map_weight=args.map_weight,
        view_weight=args.view_weight,
        contrast_weight=args.contrast_weight,
        temperature=args.temperature,
        keep_epochs=args.keep_epochs,
        reuse=args.reuse,
        fresh_share=args.fresh_structures,
        contrast_memory=args.contrast_memory,
    )
    path = pipeline.train_to_folder(
        out,
        cfg,
        val_path=args.val,
        train_path=args.train,
        structures=args.structures,
        sim_config_path=args.sim_config,
        resume=args.resume,
        command=args.command_line,
    )
    print(f"wrote {path}")
    return 0


def _copick_source(args) -> dict | None:
    if not args.copick:
        return None
    if not args.object:
        from .io.files import InputError

        raise InputError("--copick needs --object NAME (the pickable object whose picks to embed)")
    return {
        "config": args.copick,
        "object": args.object,
        "user": args.user,
        "session": args.session,
        "runs": args.runs,
        "tomo_type": args.tomo_type,
    }


def cmd_embed(args) -> int:
    if args.verbose:
        _tf(args)
    from . import pipeline

    t0 = time.time()
    path, n = pipeline.embed_to_file(
        args.out,
        objl_path=args.objl,
        star_path=args.star,
        tomograms=args.tomograms,
        subtomograms=args.subtomograms,
        dataset=args.dataset,
        model=args.model,
        voxel_size=args.voxel_size,
        tomogram_size=args.tomogram_size,
        border=args.border,
        batch_size=args.batch_size,
        precision=args.precision,
        overwrite=args.overwrite,
        command=args.command_line,
        resume=args.resume,
        scheduler=args.scheduler,
        workers=args.workers,
        tomograms_star=args.tomograms_star,
        copick=_copick_source(args),
        tta=args.tta,
    )
    print(f"embedded {n} sub-tomograms in {time.time() - t0:.1f} s -> {path}")
    return 0


def cmd_average(args) -> int:
    from . import pipeline

    summary = pipeline.average_to_folder(
        args.clusters,
        args.out,
        dataset=args.dataset,
        clusters=args.only,
        box_size=args.box,
        voxel_size=args.voxel_size,
        tilt_range=tuple(args.tilt_range),
        max_particles=args.max_particles,
        rotations=args.rotations,
        iterations=args.iterations,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    for c, row in summary["clusters"].items():
        print(f"cluster {c}: {row['particles']} particles, {row['resolution_A']} Å (FSC 0.143), {row['seconds']} s")
    print(f"wrote {Path(args.out) / 'averages.json'}")
    return 0


def cmd_adapt(args) -> int:
    from . import pipeline

    _tf(args)
    report = pipeline.adapt_to_file(
        args.out,
        model=args.model,
        objl_path=args.objl,
        star_path=args.star,
        tomograms=args.tomograms,
        subtomograms=args.subtomograms,
        dataset=args.dataset,
        copick=_copick_source(args),
        voxel_size=args.voxel_size,
        method=args.method,
        rounds=args.rounds,
        steps=args.steps,
        batch_size=args.batch_size,
        k=args.k,
        max_picks=args.max_picks,
        seed=args.seed,
        overwrite=args.overwrite,
        structures=args.structures,
        precision=args.precision,
        tta=args.tta,
        neighbours=args.neighbours,
        noise=args.noise,
        one_way_weight=args.one_way_weight,
    )
    print(
        f"{report.method} on {report.n_picks} picks (k = {report.k}): silhouette {report.score_before:.3f} -> "
        f"{report.score_after:.3f}; wrote the {report.kept} model to {args.out} ({report.seconds:.0f} s)"
        + ("; embed uses the same four views by itself (the card says so)" if report.tta else "")
    )
    return 0


def cmd_cluster(args) -> int:
    from . import pipeline

    doc, report = pipeline.cluster_to_folder(
        args.embeddings,
        args.k,
        args.out,
        args.method,
        args.evaluate,
        not args.no_report,
        args.report_k,
        args.seed,
        args.overwrite,
        normalise=args.normalise,
        average=args.average,
        dataset=args.dataset,
        average_rotations=args.rotations,
        average_iterations=args.iterations,
        copick=args.copick,
        rare=args.rare,
        min_cluster_size=args.min_cluster_size,
        rare_method=args.rare_method,
    )
    line = f"selected k = {doc['selected_k']} (largest eigengap)"
    if args.evaluate:
        best = max(doc["per_k"], key=lambda r: r["v_measure"])
        line += f"; best V-measure {best['v_measure']:.3f} at k = {best['k']}"
    print(line)
    if args.rare:
        rare = doc["rare"]
        print(
            f"rare structures: {rare['method']} found {rare['n_clusters']} clusters, sizes "
            f"{list(rare['sizes'].values())}, {rare['unassigned']} unassigned (clusters_rare.xml)"
        )
    own = Path(args.out) / f"clusters_k{args.report_k or doc['selected_k']}_particles.star"
    if own.exists():  # picks from the user's STAR file: the file to give back to RELION / Warp
        print(f"clusters in your STAR file's own tables and columns: {own} (and the other k)")
    print(f"wrote {Path(args.out) / 'metrics.json'}" + (f" and {report}" if report else ""))
    return 0


def cmd_demo(args) -> int:
    _tf(args)
    from . import pipeline

    pipeline.run_demo(args.out, model=args.model, seed=args.seed, overwrite=args.overwrite)
    return 0


def cmd_info(args) -> int:
    import json

    _tf(args)  # model/card imports Keras: load TensorFlow quietly first
    from .embed import resolve_model_path
    from .model.card import card_summary, read_card

    path = resolve_model_path(args.model)
    card = read_card(path)
    if args.json:
        print(json.dumps(card, indent=2))
        return 0
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    for line in card_summary(card):
        print(f"  {line}")
    return 0


COMMANDS = {
    "simulate": cmd_simulate,
    "simulate-tomogram": cmd_simulate_tomogram,
    "train": cmd_train,
    "embed": cmd_embed,
    "cluster": cmd_cluster,
    "average": cmd_average,
    "adapt": cmd_adapt,
    "demo": cmd_demo,
    "info": cmd_info,
}

if __name__ == "__main__":
    sys.exit(main())
