"""Prepare stage (rules/data.smk): fetch a dataset from its first source that passes verification and write
its prepared splits (pipeline/artifacts/splits.py). The sources and checks live in pipeline/data/."""

from ..data import prepare


def prepare_dataset(dataset: str, raw_dir, out_dir, sources, spec=None) -> str:
    """Write ``out_dir``/train.npz and test.npz; returns the source used (see pipeline.data.prepare)."""
    return prepare(dataset, raw_dir, out_dir, sources, spec=spec)
