"""Fashion-MNIST (Zalando Research) from three sources, tried in the configured order.

1. ``local``:    the four official IDX files (``.gz`` or not) in the raw folder
                 (``data/raw/fashion_mnist/``).
2. ``debian``:   the same files as installed by the Debian/Ubuntu package ``dataset-fashion-mnist``
                 (``/usr/share/datasets/fashion-mnist/``); works without internet.
3. ``download``: the official files from Zalando's site (5 s timeout per request), each checked
                 against the MD5 that Zalando publishes in the Fashion-MNIST README.

Every prepared array is then checked against the SHA-256 digests below. How they were obtained:
Debian recompressed the ``.gz`` files (their gzip MD5s differ from Zalando's), so the digests
were computed from the decompressed Debian files after checking that those decompressed files
have the MD5 of the official decompressed files (train-images f4a8712d7a061bf5bd6d2ca38dc4d50a,
train-labels 9018921c3c673c538a1fc5bad174d6f9, t10k-images 8181f5470baa50b63fa0f6fddb340f0a,
t10k-labels 15d484375f8d13e6eb1aabb0c3f46965, as listed by several independent loaders of the
official archives) and the SHA-256 that such loaders list for them.
"""

from pathlib import Path

from .idx import MNIST_LAYOUT_FILES, MNIST_LAYOUT_SHAPES, parse_idx
from .images import check_md5, md5_of
from .sources import download_file, first_available

TITLE = "Fashion-MNIST"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

# SHA-256 of the C-ordered bytes of the prepared uint8 arrays.
DIGESTS = {"train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
           "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
           "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
           "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"}
SHAPES, IDX_FILES = dict(MNIST_LAYOUT_SHAPES), MNIST_LAYOUT_FILES
# MD5 of the official .gz files, as published in https://github.com/zalandoresearch/fashion-mnist#get-the-data
GZ_MD5 = {
    "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
    "test_images": "bef4ecab320f06d8554ea6380940ec79",
    "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
}
DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def where_to_put(raw_dir) -> str:
    names = ", ".join(f"{n}.gz" for n in IDX_FILES.values())
    return (f"place the official Fashion-MNIST files ({names}; from {DOWNLOAD_URL} or "
            f"https://github.com/zalandoresearch/fashion-mnist) in {raw_dir}/, or install the Debian package "
            f"{DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE}, files in {DEBIAN_DIR}/) and list the source "
            "debian in data.sources")


def _read_folder(folder: Path, log, label: str):
    paths = {}
    for key, stem in IDX_FILES.items():
        found = [folder / name for name in (stem, stem + ".gz") if (folder / name).is_file()]
        if not found:
            return None
        paths[key] = found[0]
    log(f"fashion_mnist: reading official IDX files from {folder} ({label})")
    arrays = {key: parse_idx(p.read_bytes(), str(p)) for key, p in paths.items()}
    return {**arrays, "files": {key: str(p) for key, p in paths.items()}}


def from_local(raw_dir: Path, log):
    """The official IDX files in ``raw_dir``; None when any of the four is missing."""
    return _read_folder(raw_dir, log, "local")


def from_debian(raw_dir: Path, log):
    """The files of the Debian package dataset-fashion-mnist; None when it is not installed."""
    return _read_folder(DEBIAN_DIR, log, f"Debian package {DEBIAN_PACKAGE}")


def from_download(raw_dir: Path, log):
    """Download the official .gz files into ``raw_dir`` (MD5-checked), except those already there with the
    official MD5; None when the network fails."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        dest = raw_dir / f"{stem}.gz"
        have = dest.is_file() and md5_of(dest.read_bytes()) == GZ_MD5[key]
        if not have and not download_file(DOWNLOAD_URL + stem + ".gz", dest, log, "fashion_mnist"):
            return None
        data = dest.read_bytes()
        check_md5(data, GZ_MD5[key], str(dest), "delete it and run again")
        arrays[key] = parse_idx(data, str(dest))
    return {**arrays, "files": {key: str(raw_dir / f"{stem}.gz") for key, stem in IDX_FILES.items()}}


READERS = {"local": from_local, "debian": from_debian, "download": from_download}


def fetch(raw_dir, sources, log=print) -> dict:
    """Arrays from the first source in ``sources`` that has them (not yet digest-checked)."""
    return first_available(TITLE, READERS, raw_dir, sources, where_to_put(raw_dir), log)
