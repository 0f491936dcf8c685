"""Unsupervised adaptation of f_theta to the user's own sub-tomograms (no labels; no files but the picks).

Three families, seven methods:

- ``pseudolabel`` (k-means pseudo-labels refined over rounds, as DISCA does on real data): embed the
  picks, cluster them (k-means on L2-normalised features at the label-free k), train the embedding network with
  a fresh cosine head on those clusters (CosFace margin, the training augmentation), re-cluster, repeat.
- ``infomax`` (information maximisation, as SHOT): keep the model's own class head fixed and train the
  network so its predictions on the user's data are confident (low entropy per particle) and diverse (high
  entropy of the mean prediction); measured 0.11 below its input on a design set (session 27): not recommended.
- ``like`` (input matching): estimate from the picks what the simulator can reproduce (missing wedge, low-pass,
  contrast polarity; ``simulate.like``), then train on labelled sub-tomograms simulated around it (structures
  made by code by default, so nothing but the picks is needed) with a fresh cosine head and CosFace.
- ``neighbours`` (the default: of the methods measured, the only one whose candidate raised every protocol domain,
  docs/adaptation.md; self-training on the user's data, as AaD, "attracting and dispersing"): each pick's embedding
  is pulled towards the mean of its nearest neighbours' (in the features at the start of the round) and pushed
  away from the other picks of its batch, so the neighbourhoods that are already mostly one structure tighten
  into clusters; neighbours are found again each round.
- ``coral`` (feature alignment, Deep CORAL with the means): ``like``'s simulated training, plus a loss that
  pulls the mean and covariance of the L2-normalised embeddings of each simulated batch onto those of a batch
  of the user's picks, so the classes learned in simulation are laid out the same way on the user's data.
- ``anchored`` (self-training held by simulation, as the issue words adaptation: the user's unlabelled picks
  together with labelled simulated ones): ``neighbours`` on the picks, plus CosFace through the model's OWN class
  directions (frozen) on sub-tomograms of its own code-made classes simulated around the picks' acquisition
  (``like``'s estimate), meant to keep the class structure learned in simulation while the picks are pulled
  together; measured below ``neighbours`` on a design set (session 26, docs/adaptation.md): not the default.
- ``dann`` (feature alignment by a domain classifier with gradient reversal, DANN, Ganin et al. 2016):
  ``anchored``'s simulated sub-tomograms and frozen class directions, plus a small classifier that tells the
  user's picks from the simulated ones through a gradient reversal, so the network learns features in which the
  two domains cannot be told apart while the simulated classes stay separated; measured below its input on a
  design set (session 29: best V 0.915 -> 0.892 after one round, lower each round after): not recommended.

Guards, so ``adapt`` never silently makes things worse: a round stops the adaptation when the clustering
collapses (one cluster over 90 % of the picks, or the features' spread falls below a quarter of the input
model's); and two label-free scores are compared before and after: the silhouette of k-means on the
L2-normalised features at the input model's label-free k, and the stability of that clustering under
resampling (``cluster.stability``), after every round. The round kept is the one with the best silhouette among
those whose stability did not fall by more than ``STABILITY_TOLERANCE``, and only when that silhouette beats the
input's; otherwise the input model is written. The adapted model's card records what it was adapted on and both
scores, per round. Both scores reward any tight partition, a wrong one too (``infomax`` raised both on a design
set while its V-measure fell 0.11), so every round also records how many of each pick's nearest neighbours in
the input's features it kept (``neighbourhood_overlap``), and ``adapt`` warns when the written model kept fewer
than ``NEIGHBOURHOOD_WARNING`` times the share the input's own neighbourhoods keep between one view of the picks
and the mean of four (how much they move under a change the features should ignore: less on a set of well
separated structures than on a crowded one, where a good adaptation changes more of them too).

The package, one concern a module, bottom to top: ``objectives`` (the losses and loss layers), ``features`` (the
picks' features and neighbourhoods), ``guard`` (the report and the label-free scores), ``copies`` (training
copies of the picks), ``simulated`` (sub-tomograms simulated around the picks), ``methods`` (the seven methods),
``run`` (``adapt`` itself).
"""

from .copies import AUGMENTATIONS, any_wedge_view, augmented, require_augmentation, with_own_spectrum_noise
from .features import (
    NEIGHBOURS,
    features_of,
    mean_of_views,
    nearest_neighbours,
    neighbour_targets,
    neighbourhood_overlap,
    unit_embeddings,
)
from .guard import (
    NEIGHBOURHOOD_WARNING,
    STABILITY_TOLERANCE,
    AdaptReport,
    collapsed,
    label_free_score,
    silhouette_over_k,
)
from .methods import ANCHOR_WEIGHT, DOMAIN_WEIGHT, METHODS
from .objectives import (
    CORAL_WEIGHT,
    DISPERSION,
    CoralAlignment,
    DomainClassifier,
    InfoMaxLoss,
    NeighbourAttractionLoss,
    ReversalSchedule,
    coral_distance,
)
from .run import adapt, training_precision
from .simulated import ANCHOR_POOL, LIKE_STRUCTURES, AnchorPool, anchor_structures

__all__ = [
    "ANCHOR_POOL",
    "ANCHOR_WEIGHT",
    "AUGMENTATIONS",
    "CORAL_WEIGHT",
    "DISPERSION",
    "DOMAIN_WEIGHT",
    "LIKE_STRUCTURES",
    "METHODS",
    "NEIGHBOURHOOD_WARNING",
    "NEIGHBOURS",
    "STABILITY_TOLERANCE",
    "AdaptReport",
    "AnchorPool",
    "CoralAlignment",
    "DomainClassifier",
    "InfoMaxLoss",
    "NeighbourAttractionLoss",
    "ReversalSchedule",
    "adapt",
    "anchor_structures",
    "any_wedge_view",
    "augmented",
    "collapsed",
    "coral_distance",
    "features_of",
    "label_free_score",
    "mean_of_views",
    "nearest_neighbours",
    "neighbour_targets",
    "neighbourhood_overlap",
    "require_augmentation",
    "silhouette_over_k",
    "training_precision",
    "unit_embeddings",
    "with_own_spectrum_noise",
]
