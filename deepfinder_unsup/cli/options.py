"""The command line's grammar: every subcommand's options with their types, ranges and help, and the rule that
an option a run would not read is a usage error (status 2), not silently ignored."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._version import __version__

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

    def __init__(self, action) -> None:
        self.action = action
        self.parsers: dict[str, argparse.ArgumentParser] = {}

    def add_parser(self, name: str, help: str, **kwargs) -> argparse.ArgumentParser:  # noqa: A002
        kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
        parser = self.action.add_parser(name, help=help, formatter_class=_DefaultsFormatter, **kwargs)
        parser.set_defaults(usage_error=parser.error)  # the subcommand's own usage line for a later refusal
        self.parsers[name] = parser
        return parser


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
        choices=["flatten", "gap", "flatten_conv", "flatten_conv_wide", "flatten_conv_bilinear", "flatten_conv_zoom"],
        help="default: the --init-model's head, else flatten. flatten: the paper's head; gap: global average "
        "pooling (fewer weights); flatten_conv: flatten plus "
        "two convolutions on the encoder's maps, pooled, added through a Dense that starts at zero (a flatten "
        "model given to --init-model starts as the same function); flatten_conv_wide: flatten_conv plus a wider "
        "branch (128 channels, then 256 at half the size), also through a Dense that starts at zero (the shipped "
        "general model given to --init-model starts as the same function); flatten_conv_bilinear: "
        "flatten_conv_wide plus a bilinear (second-order) pooling branch, through a Dense that starts at zero; "
        "flatten_conv_zoom: flatten_conv_bilinear plus the box's central half upsampled 2x through the same "
        "encoder, two convolutions, pooled, through a Dense that starts at zero (twice the encoder's arithmetic)",
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
        "--focal-gamma",
        type=_non_negative_float,
        default=0.0,
        help="the class loss times (1 - p_true) ** GAMMA (focal loss, e.g. 2): the sub-tomograms the network "
        "already classifies pull less, those it does not fit more; 0 (default): the plain loss",
    )
    p.add_argument(
        "--binding-weight",
        type=_non_negative_float,
        default=0.0,
        help="with --structures: weight of a second loss that teaches the embedding the binding state "
        "(free / on a membrane / transmembrane); 0 (default): none",
    )
    p.add_argument(
        "--flatten-drop",
        type=_non_negative_float,
        default=None,
        help="flatten_conv* heads: in training, this share of the samples (0 to 1) loses the pose-bound "
        "flatten path and is classified by the pose-free branches alone, so that they take part; none at "
        "inference, except at 1: the flatten path removed, the head is the branches alone (default: the "
        "--init-model's, so that a warm restart keeps its function; 0 without one)",
    )
    p.add_argument(
        "--shape-weight",
        type=_non_negative_float,
        default=0.0,
        help="with --structures: weight of a loss that asks the embedding's direction for rotation-invariant shape "
        "descriptors of each particle's structure (volume, radius of gyration, axis ratios, radial profile); "
        "0 (default): none",
    )
    p.add_argument(
        "--map-weight",
        type=_positive_float,
        default=1.0,
        help="with --structures: draw each class made from a map or model file this many times as often as one "
        "made by code (procedural, builtin), so a list grown with procedural seeds keeps the real structures' "
        "share (default: 1, every class equally often; the negatives: --negative-weight)",
    )
    p.add_argument(
        "--negative-weight",
        type=_positive_float,
        default=1.0,
        help="with --structures: draw the negatives (boxes without a central particle: the false picks every pick "
        "list has) this many times as often as one structure made by code (default: 1, one class among hundreds)",
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
        "--fresh-mass-band",
        type=_non_negative_float,
        default=0.0,
        metavar="LN_RATIO",
        help="with --fresh-structures: a batch's structures drawn once are within this natural-log mass ratio of "
        "the first one (0.35: within a factor 1.4), so they must be told apart by shape, not size; 0 (default): "
        "drawn at random",
    )
    p.add_argument(
        "--fresh-mirrors",
        type=_non_negative_float,
        default=0.0,
        metavar="SHARE",
        help="with --fresh-structures: this share of a batch's structures drawn once come beside their own mirror "
        "image, a negative that differs in handedness only (mirror images are distinct classes); 0 (default): none",
    )
    p.add_argument(
        "--fresh-bound",
        type=_non_negative_float,
        default=0.0,
        metavar="SHARE",
        help="with --fresh-structures: this share of a batch's structures drawn once come beside their own copy "
        "bound to a membrane, a negative that differs in binding state only (NAME@membrane is a distinct class; "
        "the free ones keep their stray membranes); 0 (default): none",
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
        "--one-acquisition-per-batch",
        action="store_true",
        help="with --structures: every sub-tomogram of a batch shares one draw of the microscope, reconstruction "
        "and noise level, as the picks of one tomogram do (pairs then differ by pose, position, neighbours and "
        "noise only; batches still range over --sim-config)",
    )
    p.add_argument(
        "--one-acquisition-per-view",
        action="store_true",
        help="with --structures and --contrast-weight: each view of a batch's pairs (the first of every pair, then "
        "the second) shares one draw of the microscope, the two views another each, so a pair spans two "
        "microscopes while its negatives share the anchor's or the positive's (not with --one-acquisition-per-batch)",
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


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``deepfinder-unsup`` parser, and each subcommand's parser by name (for its own usage errors)."""
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
    return parser, sub.parsers


# subcommands whose inputs are all options: a first argument after one of them that is not an option is a file
# put where an option belongs (``embed picks.xml`` as ``cluster emb.h5``), which argparse reported only as "one of
# the arguments --objl --star ... is required", never naming the file
OPTIONS_ONLY = ("simulate", "simulate-tomogram", "train", "embed", "adapt", "demo")
PICKS_OPTION_BY_SUFFIX = {
    ".xml": "--objl",
    ".star": "--star",
    ".h5": "--dataset",
    ".hdf5": "--dataset",
    ".mrc": "--tomograms (beside --objl or --star picks) or, for sub-tomogram files, --subtomograms",
    ".json": "--copick",
}


def refuse_a_file_without_its_option(parsers: dict[str, argparse.ArgumentParser], argv: list[str]) -> None:
    """A usage error (status 2) naming a file given without its option to a subcommand that takes none
    positionally, with the option that kind of file goes with where the subcommand reads picks."""
    command = next((token for token in argv if not token.startswith("-")), None)
    if command not in OPTIONS_ONLY:
        return
    rest = argv[argv.index(command) + 1 :]
    if not rest or rest[0].startswith("-"):
        return
    stray = rest[0]
    option = PICKS_OPTION_BY_SUFFIX.get(Path(stray).suffix.lower()) if command in ("embed", "adapt") else None
    if option is None and command in ("embed", "adapt") and Path(stray).is_dir():
        option = "--subtomograms"
    hint = f"give it with {option}" if option else f"see 'deepfinder-unsup {command} --help'"
    parsers[command].error(f"{stray}: {command} takes its inputs by option, not by position; {hint}")


def refuse_options_that_do_nothing(args: argparse.Namespace) -> None:
    """A usage error (status 2) for an option given that this run does not read: it was ignored silently
    (``--tomograms`` beside ``--subtomograms``, ``--voxel-size`` beside ``--dataset``, a copick filter without
    ``--copick``, ``cluster --dataset`` without ``--average``), so the run did something other than what was asked."""
    for option, given, applies, to in _option_rules(args):
        if given is not None and not applies:  # the subcommand's usage line, as argparse's own errors
            args.usage_error(f"{option} applies to {to} only; it would be ignored")


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
