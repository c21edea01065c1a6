"""Atomic file writes: a temporary file in the target folder, then a rename.

An interrupted run never leaves a truncated file behind a valid-looking name.
"""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import PipelineError

_UMASK = os.umask(0)
os.umask(_UMASK)


def check_folder(path) -> Path:
    """``path`` as a Path, once its folder exists (PipelineError otherwise).

    A stage can call this on its output paths before long work, so that a mistyped path fails at once.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise PipelineError(f"{path}: folder {path.parent} does not exist; create it or choose another output path")
    return path


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    ``suffix`` keeps an extension some writers insist on (numpy adds ``.npz``). The folder must exist
    (PipelineError otherwise): a mistyped output path is not silently created; Snakemake creates
    its jobs' output folders, and a stage whose option names an output folder creates that one.
    """
    path = check_folder(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_bytes(obj, sort_keys=True) -> bytes:
    """JSON encoding with a fixed layout (sorted keys by default) so equal content gives equal bytes."""
    return (json.dumps(obj, indent=1, sort_keys=sort_keys) + "\n").encode("utf-8")


def write_json(path, obj, sort_keys=True) -> None:
    write_bytes(path, json_bytes(obj, sort_keys))


def write_bytes_if_changed(path, data: bytes) -> bool:
    """Write ``data`` unless ``path`` already holds exactly these bytes. Returns True if written.

    Unchanged files keep their modification time, so downstream jobs are not re-run.
    """
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True


def write_parquet(path, table, row_group_size=None) -> None:
    """Write a pyarrow Table atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, write_page_checksum=True)

