"""Benchmark: training a shard of MNIST NiN base models, this pipeline's tensor path against a
reference loop written the way the original DPA/FA scripts train (a torchvision-style Dataset of
PIL images with per-sample transforms and a DataLoader per model).

Both train the same models: the same k = 1200 partitions (the first `--models` of them, about 50
images each), seeds, initialisation and the same shuffling and crop offsets (drawn once per model
from its seed), 1 epoch each by default. The reference applies the crops to PIL images in the
DataLoader; the pipeline crops tensors in batches. The eval-mode logits of both must agree within
floating-point tolerance.

    python -m benchmarks.nin_throughput [--models 50] [--epochs 1] [--workers 1] [--out FILE]
"""

import argparse
import json
import time

import numpy as np
import torch

from pipeline.artifacts.splits import load_split
from pipeline.learners import nin, resolve_params
from pipeline.learners import torch_common as tc
from pipeline.partition import partition


class PartitionDataset(torch.utils.data.Dataset):
    """One partition as PIL images, transformed per sample: pad + crop at the planned offset, ToTensor, Normalize."""

    def __init__(self, images, labels, mean, std, padding):
        from PIL import Image

        self.images = [Image.fromarray(img) for img in images]
        self.labels = labels
        self.mean, self.std, self.padding = mean.tolist(), std.tolist(), padding
        self.offsets = None

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from torchvision.transforms import functional as F

        dy, dx = self.offsets[i].tolist()
        img = F.pad(self.images[i], self.padding)
        img = F.crop(img, dy, dx, self.images[i].height, self.images[i].width)
        return F.normalize(F.to_tensor(img), self.mean, self.std), int(self.labels[i])


class PlannedSampler(torch.utils.data.Sampler):
    def __init__(self, order):
        self.order = order

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self):
        return len(self.order)


def reference_fit(images, labels, seed, params, workers):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean, std = tc.normalization_stats(images)
    model = nin.build(1, 10)
    plan = tc.draw_plan(len(images), params["epochs"], params["batch_size"], params["crop_padding"], False, generator)
    dataset = PartitionDataset(images, labels, mean, std, params["crop_padding"])
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"], nesterov=True,
                          weight_decay=params["weight_decay"])
    steps = -(-len(images) // params["batch_size"])
    sched = nin.multistep(params)(opt, steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for order, offsets, _ in plan:
        dataset.offsets = offsets
        loader = torch.utils.data.DataLoader(dataset, batch_size=params["batch_size"], sampler=PlannedSampler(order),
                                             num_workers=workers)
        for xb, yb in loader:
            if len(xb) >= 2:
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xb), yb).backward()
                opt.step()
            sched.step()
    return {"weights": {k: v.detach() for k, v in model.state_dict().items()}, "mean": mean, "std": std,
            "in_channels": 1}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", default="data/prepared/mnist", help="folder with the prepared MNIST npz files")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the reference")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    images, labels, _ = load_split(f"{args.prepared}/train.npz")
    test, _, _ = load_split(f"{args.prepared}/test.npz")
    _, shards, _ = partition(images, labels, np.arange(len(labels)), "dpa", k=1200, shard_size=args.models)
    models = shards[0]["models"]
    subsets = [(images[m["sample_ids"]], labels[m["sample_ids"]], m["seeds"][0]) for m in models]
    n_samples = sum(len(y) for _, y, _ in subsets) * args.epochs
    params = resolve_params("nin", {"epochs": args.epochs})
    device = torch.device("cpu")

    start = time.perf_counter()
    fast = [nin.fit(x, y, 10, seed, params, device) for x, y, seed in subsets]
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = [reference_fit(x, y, seed, params, args.workers) for x, y, seed in subsets]
    slow_s = time.perf_counter() - start

    check = test[:100]
    a = nin.predict(fast, check, 10, params, device)
    b = nin.predict(slow, check, 10, params, device)
    diff = float(np.abs(a - b).max())
    scale = float(np.abs(b).max())
    same_votes = float((a.argmax(-1) == b.argmax(-1)).mean())
    result = {"models": len(models), "epochs": args.epochs, "samples": n_samples, "threads": args.threads,
              "reference_workers": args.workers, "pipeline_s": round(fast_s, 2), "reference_s": round(slow_s, 2),
              "pipeline_samples_per_s": round(n_samples / fast_s, 1),
              "reference_samples_per_s": round(n_samples / slow_s, 1), "speedup": round(slow_s / fast_s, 2),
              "max_abs_logit_diff": diff, "max_abs_logit": scale, "same_votes": same_votes}
    print(json.dumps(result, indent=1))
    assert diff <= 1e-4 * max(1.0, scale), "pipeline and reference models differ beyond floating-point tolerance"
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
