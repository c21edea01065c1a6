"""Datasets: each module turns one dataset's sources into the prepared form.

Prepared form (``data/prepared/<dataset>/{train,test}.npz``, owner: pipeline/artifacts/splits.py): ``images`` uint8[N, H, W] or
uint8[N, H, W, C], ``labels`` int[N], ``class_names`` str[C]. Arrays are verified against the
dataset's official SHA-256 digests where they are known (MNIST, Fashion-MNIST; CIFAR-10 and GTSRB
check their official files' MD5), and against the digests stored at preparation when loaded.

Modules: mnist, fashion_mnist, cifar10, gtsrb (fixed official data; ``fetch``), imagenet64 and
user (user-supplied data declared under ``datasets:`` in params.yaml; ``load``).
"""

from .prepared import DATASETS, prepare  # noqa: F401
