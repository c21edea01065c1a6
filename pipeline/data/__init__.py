"""Datasets: each module turns one dataset's sources into the prepared form.

Prepared form (``data/prepared/<dataset>/{train,test}.npz``): ``images`` uint8[N, H, W] or
uint8[N, H, W, C], ``labels`` int[N], ``class_names`` str[C]. Every array is verified against
the dataset's known SHA-256 digests when it is prepared and again when it is loaded.
"""

from .prepared import DATASETS, array_digest, load_split, prepare  # noqa: F401
