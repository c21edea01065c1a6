"""Small files written the way the official datasets are laid out, for tests (a few dozen images each)."""

import csv
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# ---- CIFAR-10: cifar-10-python.tar.gz with pickled batches -------------------------------------------------

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batch_bytes(images, labels, label="batch") -> bytes:
    """A pickled batch as in the official archive: data uint8[N, 3072] (R, G, B planes), labels list."""
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))
    batch = {b"batch_label": label.encode(), b"labels": [int(y) for y in labels], b"data": data,
             b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(images))]}
    return pickle.dumps(batch, protocol=4)


def cifar_meta_bytes() -> bytes:
    return pickle.dumps({b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in CIFAR_NAMES],
                         b"num_vis": 3072}, protocol=4)


def cifar_members(rng, per_batch=8, n_test=12) -> tuple[dict, dict]:
    """(member name -> bytes, expected arrays) of a small CIFAR-10 archive."""
    members, expected = {"batches.meta": cifar_meta_bytes()}, {}
    train_x, train_y = [], []
    for b in range(1, 6):
        x = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, size=per_batch)
        members[f"data_batch_{b}"] = cifar_batch_bytes(x, y, f"training batch {b} of 5")
        train_x.append(x)
        train_y.append(y)
    test_x = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
    test_y = rng.integers(0, 10, size=n_test)
    members["test_batch"] = cifar_batch_bytes(test_x, test_y, "testing batch 1 of 1")
    expected["train_images"], expected["train_labels"] = np.concatenate(train_x), np.concatenate(train_y)
    expected["test_images"], expected["test_labels"] = test_x, test_y
    return members, expected


def write_cifar_archive(path: Path, members: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {**members, "readme.html": b"<html></html>"}.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cifar_overrides(archive: Path, members: dict, n_train: int, n_test: int) -> dict:
    """Module constants that declare these generated files the official ones."""
    return {"ARCHIVE_MD5": md5(archive),
            "MEMBER_MD5": {n: hashlib.md5(d).hexdigest() for n, d in members.items()},
            "SHAPES": {"train_images": (n_train, 32, 32, 3), "train_labels": (n_train,),
                       "test_images": (n_test, 32, 32, 3), "test_labels": (n_test,)}}


# ---- GTSRB: the three official zips of .ppm images with ';'-separated annotations ---------------------------

GT_HEADER = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def ppm_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PPM")
    return buf.getvalue()


def gt_csv(rows) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(GT_HEADER)
    for name, image, class_id in rows:
        h, w = image.shape[:2]
        writer.writerow([name, w, h, 1, 1, w - 2, h - 2, class_id])
    return buf.getvalue().encode()


def gtsrb_files(rng, classes=(0, 1, 2, 42), per_class=9, n_test=12) -> tuple[dict, dict]:
    """(zip name -> {member -> bytes}, expected {split: (original images, labels)}) with varying image sizes."""
    def image():
        return rng.integers(0, 256, size=(int(rng.integers(15, 60)), int(rng.integers(15, 60)), 3), dtype=np.uint8)

    train, train_members = [], {}
    for c in classes:
        folder = f"GTSRB/Final_Training/Images/{c:05d}"
        rows = [(f"{t:05d}_{i:05d}.ppm", image(), c) for t, i in [(j // 3, j % 3) for j in range(per_class)]]
        train_members[f"{folder}/GT-{c:05d}.csv"] = gt_csv(rows)
        for name, im, _ in rows:
            train_members[f"{folder}/{name}"] = ppm_bytes(im)
        train += [(im, c) for _, im, _ in rows]
    test_rows = [(f"{i:05d}.ppm", image(), int(rng.choice(classes))) for i in range(n_test)]
    test_members = {f"GTSRB/Final_Test/Images/{name}": ppm_bytes(im) for name, im, _ in test_rows}
    test_members["GTSRB/Final_Test/Images/GT-final_test.test.csv"] = b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\r\n"
    zips = {"GTSRB_Final_Training_Images.zip": train_members,
            "GTSRB_Final_Test_Images.zip": test_members,
            "GTSRB_Final_Test_GT.zip": {"GT-final_test.csv": gt_csv(test_rows)}}
    expected = {"train": ([im for im, _ in train], [c for _, c in train]),
                "test": ([im for _, im, _ in test_rows], [c for _, _, c in test_rows])}
    return zips, expected


def write_zips(folder: Path, zips: dict) -> dict:
    """Write the zips; returns name -> MD5."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, members in zips.items():
        with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as z:
            for member, data in members.items():
                z.writestr(member, data)
    return {name: md5(folder / name) for name in zips}


def gtsrb_overrides(zip_md5: dict, expected: dict) -> dict:
    n_train, n_test = len(expected["train"][1]), len(expected["test"][1])
    return {"ZIP_MD5": zip_md5,
            "SHAPES": {"train_images": (n_train, 48, 48, 3), "train_labels": (n_train,),
                       "test_images": (n_test, 48, 48, 3), "test_labels": (n_test,)}}


# ---- ImageNet 64x64: train_data_batch_1..10.npz and val_data.npz -------------------------------------------

def write_imagenet64(folder: Path, rng, per_batch=3, n_val=10, side=64) -> dict:
    """Official-layout npz batches (data uint8[N, 3*side*side] in R, G, B planes, labels 1..1000)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {"train": ([], []), "test": ([], [])}
    files = [(f"train_data_batch_{b}.npz", per_batch, "train") for b in range(1, 11)] + [("val_data.npz", n_val, "test")]
    for name, n, split in files:
        x = rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)
        labels = rng.integers(1, 1001, size=n)
        data = x.transpose(0, 3, 1, 2).reshape(n, -1)
        extra = {"mean": data.mean(axis=0)} if split == "train" else {}
        np.savez(folder / name, data=data, labels=labels.tolist(), **extra)
        expected[split][0].append(x)
        expected[split][1].append(labels - 1)
    return {split: (np.concatenate(x), np.concatenate(y)) for split, (x, y) in expected.items()}


# ---- generic user formats -------------------------------------------------------------------------------------

def write_image_folder(root: Path, rng, classes=("cat", "dog", "emu"), per_class=6, sizes=((20, 24), (31, 17))):
    """root/<class>/<i>.png with mixed sizes; returns (original images, labels) in the loader's order."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(sorted(classes)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / name / f"{i:03d}.png")
            images.append(image)
            labels.append(label)
    return images, labels


def declare_official(module_file: Path, overrides: dict) -> None:
    """Append constants to a project copy's dataset module, declaring generated files the official ones.

    For workflow tests, whose jobs run the project's own copy of the package in other processes.
    """
    lines = "".join(f"{name} = {value!r}\n" for name, value in overrides.items())
    with open(module_file, "a") as f:
        f.write("\n\n# test project: the generated files stand in for the official ones\n" + lines)
