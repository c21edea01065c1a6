"""Distances stage (rules/distances.smk): the shared nearest-neighbour distances of a run whose learner is
decomposable (hog_nn; docs/design.md#shared-distances).

``test_features``: the test samples' exact-integer features, once per run. ``bucket_distances``: for one
bucket-group file, the smallest squared distance from every test sample to each bucket's training samples
of each class, computed from the bucket's own samples only (checked against the digests of the partition)
and written row group by row group (pipeline/artifacts/distances.py). Certify takes every model's scores
from these: the minimum over its buckets.
"""


from .. import learners, provenance
from ..artifacts.distances import load_test_features, row_group_tests, save_test_features, write_bucket_minima
from ..artifacts.partition_files import bucket_group_samples, read_bucket_group
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..edits import training_pool
from ..errors import PipelineError
from ..nearest import bucket_minima
from ..progress import bar

COMPUTE_TESTS = 1024  # test samples whose distances are computed at once (at least; whole row groups)


def learner_and_spec(learner_name: str, learner_params):
    """The learner module (decomposable, else PipelineError) and its spec."""
    if not learners.is_decomposable(learner_name):
        raise PipelineError(f"learner {learner_name!r} is not a nearest-neighbour learner; its models are trained "
                            "and predicted one by one (train and predict steps), not from shared distances")
    params = learners.resolve_params(learner_name, learner_params)
    return learners.get(learner_name), params, provenance.learner_spec(learner_name, params)


def write_test_features(test_path, learner_name, learner_params, test_limit=None, out=None) -> str:
    """Write the test samples' features to ``out`` (test_features.npz); returns a one-line summary."""
    check_folder(out)
    learner, params, spec = learner_and_spec(learner_name, learner_params)
    images, labels, _ = load_test_subset(test_path, test_limit)
    features, scale = learner.embed_test(images, params)
    save_test_features(out, features, scale, spec, test_digests(images, labels))
    return f"test_features: {features.shape[0]} test samples, {features.shape[1]} features"


def bucket_distances(group_path, train_path, inserted_path, features_path, learner_name, learner_params,
                     device="auto", threads=1, out=None) -> str:
    """Write the bucket minima of one bucket group to ``out`` (buckets_<g>.parquet); returns a summary."""
    import torch

    check_folder(out)
    torch.set_num_threads(max(1, threads))
    learner, params, spec = learner_and_spec(learner_name, learner_params)
    group = read_bucket_group(group_path)
    first = group["buckets"][0]["bucket"] if group["buckets"] else 0
    if [b["bucket"] for b in group["buckets"]] != list(range(first, first + len(group["buckets"]))):
        raise PipelineError(f"{group_path}: its buckets are not consecutive ids; re-run the partition step "
                            "(snakemake --forcerun partition_<run>)")
    test_q, record = load_test_features(features_path)
    fix = f"delete {features_path} and run snakemake again"
    provenance.check_learner(features_path, record["learner"], spec, fix)
    images, labels, class_names = training_pool(train_path, inserted_path)
    x, y, bucket = bucket_group_samples(images, labels, group, group_path)
    n_classes = len(class_names)
    train_q, train_labels, rows = learner.embed_train(x, y, params, record["scale"])
    if train_q.shape[1:] != test_q.shape[1:]:
        raise PipelineError(f"{features_path}: {test_q.shape[1]} features per test sample, {train_q.shape[1]} per "
                            f"training sample of {group_path}: not the same dataset; {fix}")
    local = bucket[rows] - first  # bucket of every (augmented) training row, as 0..n_b-1
    dev = learners.pick_device(device)
    train = torch.from_numpy(train_q).to(dev)
    step = row_group_tests(group["n_buckets"], n_classes)
    out_record = {
        "group": group["group"], "n_buckets": group["n_buckets"], "n_classes": n_classes, "row_group_tests": step,
        "buckets": [{"bucket": b["bucket"], "subset_sha256": b["subset_sha256"]} for b in group["buckets"]],
        "learner": spec, "test": record["test"], "test_features_sha256": record["features_sha256"],
        "scale": record["scale"],
    }

    def chunks():  # blocks of whole row groups of at least COMPUTE_TESTS test samples (efficient matrix products)
        block = step * -(-COMPUTE_TESTS // step)
        for start in bar(range(0, len(test_q), block), desc=f"distances group {group['group']}"):
            test = torch.from_numpy(test_q[start:start + block]).to(dev)
            minima = bucket_minima(test, train, train_labels, local, len(group["buckets"]), n_classes)
            for offset in range(0, minima.shape[0], step):
                yield start + offset, minima[offset:offset + step]

    write_bucket_minima(out, out_record, chunks())
    return (f"bucket_distances: group {group['group']}, {len(group['buckets'])} buckets, {len(y)} samples "
            f"({len(train_q)} with copies), {len(test_q)} test samples")
