"""GTSRB (German Traffic Sign Recognition Benchmark) from its official files.

Sources, tried in the configured order:

1. ``local``:    in the raw folder (``data/raw/gtsrb/``) the three official zips
                 ``GTSRB_Final_Training_Images.zip``, ``GTSRB_Final_Test_Images.zip`` and
                 ``GTSRB_Final_Test_GT.zip`` (read without extracting), or what they extract to:
                 ``GTSRB/Final_Training/Images/<00000..00042>/`` (the .ppm images of a class and
                 its ``GT-<class>.csv``), ``GTSRB/Final_Test/Images/*.ppm`` and ``GT-final_test.csv``.
2. ``download``: the three zips from the official archive (5 s timeout per network operation).

Annotations are ';'-separated CSV files with the header
``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``. Every image must have the width and
height its row states. The images are not cropped to the ROI (as in the DPA/FA papers' code).

The images vary in size (15 x 15 to 250 x 250). The prepared arrays hold them resized to 48 x 48
RGB with Pillow's bilinear filter (``images.resize_image``), the input size of the papers' NiN;
each sample's original pixel sum and the SHA-256 of its original decoded RGB bytes are stored
beside them, and the partition hashes use those (docs/design.md#partitioning), not the resized pixels.

Order: training images by class folder, then in the row order of the class's CSV; test images in
the row order of ``GT-final_test.csv``.

What is verified: the MD5 of each zip. The dataset's publisher documents no checksum; the values
below are the ones that torchvision (test images, test ground truth) and other loaders of the
official archive check. Extracted folders cannot be checked that way, and SHA-256 digests of the
prepared arrays could not be computed on the offline machine this was written on, so ``DIGESTS``
is empty: the prepared files record their own SHA-256 digests, which ``load_split`` checks.
"""

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..progress import bar
from .images import check_md5, decode_image, md5_of, split_shapes, stack_images
from .sources import download_file, first_available

TITLE = "GTSRB"
N_CLASSES = 43
CLASS_NAMES = [f"{c:05d}" for c in range(N_CLASSES)]  # the official class folder names
SIZE = (48, 48)
URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
ZIP_MD5 = {
    "GTSRB_Final_Training_Images.zip": "f33fd80ac59bff73c82d25ab499e03a3",
    "GTSRB_Final_Test_Images.zip": "c7e4e6327067d32654124b0fe9e82185",
    "GTSRB_Final_Test_GT.zip": "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
}
TRAIN_DIR = "GTSRB/Final_Training/Images"
TEST_DIR = "GTSRB/Final_Test/Images"
TEST_GT = "GT-final_test.csv"
COLUMNS = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]

DIGESTS: dict = {}  # SHA-256 of the prepared arrays: not obtainable offline (see the module docstring)
SHAPES = split_shapes(39209, 12630, (48, 48, 3))


def where_to_put(raw_dir) -> str:
    return (f"place the official GTSRB files {', '.join(ZIP_MD5)} (from {URL} or "
            f"https://benchmark.ini.rub.de/gtsrb_dataset.html) in {raw_dir}/, or what they extract to: "
            f"{raw_dir}/{TRAIN_DIR}/<00000..00042>/, {raw_dir}/{TEST_DIR}/ and {raw_dir}/{TEST_GT}")


def _zip_files(path: Path) -> dict:
    """Member name -> reader of its bytes, after the zip's MD5 check."""
    data = path.read_bytes()
    check_md5(data, ZIP_MD5[path.name], str(path), "delete it and place the official file there")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as err:
        raise PipelineError(f"{path}: malformed zip ({err}); replace it with the official file") from None

    def reader(name):
        def read():
            try:
                return archive.read(name)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise PipelineError(f"{path}: member {name} is corrupt ({err}); replace the zip with the official one") from None
        return read

    return {name: reader(name) for name in names}


def _folder_files(root: Path) -> dict:
    """Relative path (posix) -> reader, for the extracted files under ``root``."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes for p in root.rglob("*")
            if p.is_file() and p.suffix.lower() in (".ppm", ".csv")}


def parse_annotations(text: str, what: str) -> list[dict]:
    """Rows of a GT CSV: dicts with Filename (str), Width, Height, ClassId (int)."""
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    if not rows or [c.strip() for c in rows[0]] != COLUMNS:
        raise PipelineError(f"{what}: header must be {';'.join(COLUMNS)}; not an official GTSRB annotation file")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise PipelineError(f"{what}: line {number} has {len(row)} fields, expected {len(COLUMNS)}")
        try:
            width, height, class_id = int(row[1]), int(row[2]), int(row[7])
        except ValueError:
            raise PipelineError(f"{what}: line {number}: Width, Height and ClassId must be integers") from None
        if not 0 <= class_id < N_CLASSES:
            raise PipelineError(f"{what}: line {number}: label (ClassId) {class_id} is out of range 0..{N_CLASSES - 1}")
        out.append({"Filename": row[0].strip(), "Width": width, "Height": height, "ClassId": class_id})
    return out


def _load_images(files: dict, folder: str, rows: list[dict], origin: str, desc: str) -> list:
    images = []
    for row in bar(rows, desc=desc):
        name = f"{folder}/{row['Filename']}"
        if name not in files:
            raise PipelineError(f"{origin}: {name} is listed in the annotations but missing; {where_to_put('the raw folder')}")
        image = decode_image(files[name](), f"{origin}: {name}")
        if image.shape[:2] != (row["Height"], row["Width"]):
            raise PipelineError(f"{origin}: {name} is {image.shape[1]} x {image.shape[0]} pixels but its annotation "
                                f"says {row['Width']} x {row['Height']}; the files are corrupt")
        images.append(image)
    return images


def _text(files: dict, name: str, origin: str) -> str:
    try:
        return files[name]().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PipelineError(f"{origin}: {name} is not a text file; replace it with the official one") from None


def arrays_from_files(files: dict, origin: str) -> dict:
    """Prepared arrays from the official files (path -> reader): resized images, labels, original hash inputs."""
    class_dirs = sorted({n.split("/")[3] for n in files if n.startswith(TRAIN_DIR + "/") and n.count("/") == 4})
    per_class = []
    for class_dir in class_dirs:
        if class_dir not in CLASS_NAMES:
            raise PipelineError(f"{origin}: unexpected class folder {TRAIN_DIR}/{class_dir}; classes are 00000..00042")
        csv_name = f"{TRAIN_DIR}/{class_dir}/GT-{class_dir}.csv"
        if csv_name not in files:
            raise PipelineError(f"{origin}: {csv_name} missing; {where_to_put('the raw folder')}")
        rows = parse_annotations(_text(files, csv_name, origin), f"{origin}: {csv_name}")
        for row in rows:
            if row["ClassId"] != int(class_dir):
                raise PipelineError(f"{origin}: {csv_name} lists ClassId {row['ClassId']} in class folder {class_dir}")
        per_class.append((f"{TRAIN_DIR}/{class_dir}", rows))
    train_rows = [row for _, rows in per_class for row in rows]
    if not train_rows:
        raise PipelineError(f"{origin}: no training images under {TRAIN_DIR}/; {where_to_put('the raw folder')}")
    if TEST_GT not in files:
        raise PipelineError(f"{origin}: {TEST_GT} missing; {where_to_put('the raw folder')}")
    test_rows = parse_annotations(_text(files, TEST_GT, origin), f"{origin}: {TEST_GT}")

    train_images = [image for folder, rows in per_class
                    for image in _load_images(files, folder, rows, origin, f"gtsrb train {folder[-5:]}")]
    test_images = _load_images(files, TEST_DIR, test_rows, origin, "gtsrb test")
    arrays = {}
    for split, images, rows in (("train", train_images, train_rows), ("test", test_images, test_rows)):
        stacked = stack_images(images, SIZE, f"{origin} ({split})")
        arrays[f"{split}_images"] = stacked["images"]
        arrays[f"{split}_labels"] = np.array([r["ClassId"] for r in rows], dtype=np.uint8)
        arrays[f"{split}_originals"] = stacked["originals"]
    return arrays


def _local_files(raw_dir: Path) -> dict | None:
    files = _folder_files(raw_dir)
    for name in ZIP_MD5:
        if (raw_dir / name).is_file():
            files.update(_zip_files(raw_dir / name))
    has_train = any(n.startswith(TRAIN_DIR + "/") for n in files)
    has_test = TEST_GT in files and any(n.startswith(TEST_DIR + "/") for n in files)
    return files if has_train and has_test else None


def from_local(raw_dir: Path, log):
    """The official zips, or their extracted files, in ``raw_dir``; None when train or test is missing."""
    files = _local_files(raw_dir)
    if files is None:
        return None
    log(f"gtsrb: reading the official files in {raw_dir}")
    return arrays_from_files(files, str(raw_dir))


def from_download(raw_dir: Path, log):
    """Download the three official zips into ``raw_dir``, except those already there with the official MD5;
    None when the network fails."""
    for name, md5 in ZIP_MD5.items():
        have = (raw_dir / name).is_file() and md5_of((raw_dir / name).read_bytes()) == md5
        if not have and not download_file(URL + name, raw_dir / name, log, "gtsrb"):
            return None
    return from_local(raw_dir, log)


READERS = {"local": from_local, "download": from_download}


def fetch(raw_dir, sources, log=print) -> dict:
    """Arrays from the first source that has them: images uint8[N, 48, 48, 3], labels, original hash inputs."""
    return first_available(TITLE, READERS, raw_dir, sources, where_to_put(raw_dir), log)
