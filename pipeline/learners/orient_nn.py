"""``orient_nn``: 1-nearest-neighbour on pooled gradient-orientation maps (the default learner).

Trains on: its own subset only (pipeline/learners/nearest_neighbour.py: a model is its subset with rotated
copies of its deskewed images; class score = minus the distance to the nearest sample of the class). The
feature map (features.orientation_pooling) is a fixed per-image map: blurred gradients binned by signed
direction, pooled with Gaussian weights on a 9 x 9 lattice, compressed by a power of 1/8 and normalised per
cell. It is more data-efficient than HOG on small partitions (docs/learners.md) and cheaper (972 features
against HOG's 2349). Exact arithmetic: docs/design.md#determinism and nearest_neighbour.quantisation_scale.
"""

import numpy as np

from . import nearest_neighbour as nn
from .features import orientation_pooling
from .nearest_neighbour import EXACT_LIMIT, augmented, fit, scores_from_min_sq  # noqa: F401 (the learner interface)
from .specs import SPECS

DEFAULTS = SPECS["orient_nn"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py
NAME = "orient_nn"


def feature_map(images: np.ndarray, params: dict) -> np.ndarray:
    """Pooled orientation maps of images (already deskewed where asked): float64[N, D]."""
    return orientation_pooling(images, params["orientations"], params["blur"], params["grid"], params["stride"],
                               params["sigma"])


def norm_bound(params: dict) -> float:
    """Bound of ||f||^2: every cell's vector has squared norm < 1 and there are grid**2 cells, divided by grid."""
    return 1.0


features, quantisation_scale, embed_test, embed_train, predict = nn.bound(NAME, feature_map, norm_bound)
