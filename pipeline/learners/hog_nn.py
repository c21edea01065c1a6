"""``hog_nn``: 1-nearest-neighbour on HOG features.

Trains on: its own subset only (pipeline/learners/nearest_neighbour.py: a model is its subset with rotated
copies of its deskewed images; class score = minus the distance to the nearest sample of the class). The
feature map is HOG at one or more cell sizes (features.py), a fixed per-image map. Exact arithmetic:
docs/design.md#determinism and nearest_neighbour.quantisation_scale.
"""

import numpy as np

from . import nearest_neighbour as nn
from .features import multi_hog
from .nearest_neighbour import EXACT_LIMIT, augmented, fit, scores_from_min_sq  # noqa: F401 (the learner interface)
from .specs import SPECS

DEFAULTS = SPECS["hog_nn"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py
NAME = "hog_nn"


def feature_map(images: np.ndarray, params: dict) -> np.ndarray:
    """HOG of images (already deskewed where asked): float64[N, D]."""
    return multi_hog(images, tuple(params["cells"]), params["orientations"], params["block"])


def norm_bound(params: dict) -> float:
    """Bound of ||f||^2: each HOG scale's part has squared norm <= 1 / (block**2 * orientations) (L2-normalised
    blocks, see features.multi_hog)."""
    return len(params["cells"]) / (params["block"] ** 2 * params["orientations"])


features, quantisation_scale, embed_test, embed_train, predict = nn.bound(NAME, feature_map, norm_bound)
