"""Training f_theta as a classifier of simulated sub-tomograms (Moebel & Kervrann 2022, section 3).

Adam (lr 1e-4, betas 0.9 / 0.999, eps 1e-8), categorical cross-entropy, batch 64, class-balanced batches
(each sample's class drawn uniformly, DeepFinder's resampling), augmentation by DeepFinder's 180 degree rotation
about the tilt axis (y) and a random shift of up to 2 voxels. The encoder starts from DeepFinder's weights
when given. Validation on a separate data set, best-model checkpoint (validation loss), early stopping,
CSV log, resumable from the last epoch; at the end a training-curve plot, a validation confusion matrix and
the k-means V-measure of the validation embeddings. With ``binding_weight`` > 0 (structures simulated on the
fly), a second cross-entropy asks the embedding for the central particle's binding state (free, on a membrane,
transmembrane) as one direction shared by every class. With ``view_weight`` > 0, half of each batch is a
wedge-symmetric view of the other half (``volume.random_wedge_symmetric_view``) and a third loss asks each pair
for the same embedding direction (``model.classifier.PairedViewConsistency``). With ``contrast_weight`` > 0,
the second half holds other sub-tomograms of the first half's structures and a supervised contrastive loss
asks each to find its partner among the batch (``model.classifier.PairedContrast``).

The package, bottom to top: ``config`` (the settings and their checks), ``sampling`` (batches from a data set in
memory), ``callbacks`` (per epoch), ``network`` (the model, its optimiser and losses), ``record`` (scores and the
model card), ``run`` (``train`` itself).
"""

from .callbacks import (
    BestCheckpoint,
    ClusteringMonitor,
    EpochModels,
    SaveState,
    WallClockLimit,
    WatchdogMarks,
    save_keras_atomically,
)
from .config import TrainConfig, contrast_memory_of, training_precision
from .network import (
    build_training_model,
    compile_classifier,
    flatten_drop_of_model,
    head_and_flatten_drop,
    head_of_model,
    leads_class_list,
    learning_rate_of,
    with_init_model_defaults,
)
from .record import evaluate_classifier, model_card, samples_seen, simulated_anew
from .run import FIRST_STEP_BOUND_S, train, train_from_files
from .sampling import BalancedBatches, augment, balanced_indices, relabel_by_name

__all__ = [
    "FIRST_STEP_BOUND_S",
    "BalancedBatches",
    "BestCheckpoint",
    "ClusteringMonitor",
    "EpochModels",
    "SaveState",
    "TrainConfig",
    "WallClockLimit",
    "WatchdogMarks",
    "augment",
    "balanced_indices",
    "build_training_model",
    "compile_classifier",
    "contrast_memory_of",
    "evaluate_classifier",
    "flatten_drop_of_model",
    "head_and_flatten_drop",
    "head_of_model",
    "leads_class_list",
    "learning_rate_of",
    "model_card",
    "relabel_by_name",
    "samples_seen",
    "save_keras_atomically",
    "simulated_anew",
    "train",
    "train_from_files",
    "training_precision",
    "with_init_model_defaults",
]
