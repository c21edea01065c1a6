"""Partition stage (rules/partition.smk): bucket the run's training samples (after its edits) and write the
partition files (pipeline/artifacts/partition_files.py); a shard file is rewritten only when its content
changes, so that only the shards an edit touches retrain (docs/design.md#partitioning)."""

from ..artifacts.partition_files import save_inserted, write_partition
from ..edits import edited_training_set
from ..errors import PipelineError
from ..partition import partition


def partition_run(train_path, method, k, d, hash_name, shard_size, versions, expect_shards, out_dir,
                  train_limit=None, insert=None, exclude=None) -> str:
    """Write assignment.parquet, shard_<s>.json, buckets_<g>.json and inserted.npz to ``out_dir``; returns a one-line summary."""
    edited = edited_training_set(train_path, train_limit, insert, exclude)
    assignment, shards, groups = partition(edited["images"], edited["labels"], edited["ids"], method, k, d, hash_name,
                                   shard_size, versions, edited["originals"])
    if len(shards) != expect_shards:
        raise PipelineError(f"partition made {len(shards)} shards but the workflow expects {expect_shards}")
    changed = write_partition(out_dir, assignment, shards, groups)
    save_inserted(f"{out_dir}/inserted.npz", *edited["inserted"])
    n_models = sum(len(s["models"]) for s in shards)
    return (f"partition: {len(edited['labels'])} samples, {n_models} models in {len(shards)} shards; "
            f"{len(changed)} shard files changed")
