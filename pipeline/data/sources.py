"""Trying a dataset's sources in the configured order, and downloads with short timeouts."""

import shutil
import urllib.request
from pathlib import Path

from ..atomic import atomic_path
from ..errors import PipelineError

DOWNLOAD_TIMEOUT_S = 5


def first_available(title: str, readers: dict, raw_dir, sources, where: str, log) -> dict:
    """Arrays from the first of ``sources`` that ``readers`` has and that finds the data.

    ``readers``: source name -> function(raw_dir, log) returning a dict of arrays or None.
    Sources this dataset does not have (e.g. pypi for CIFAR-10) are skipped.
    """
    raw_dir = Path(raw_dir)
    tried = []
    for source in sources:
        if source not in readers:
            continue
        tried.append(source)
        arrays = readers[source](raw_dir, log)
        if arrays is not None:
            arrays["source"] = source
            return arrays
    listed = ", ".join(tried) if tried else f"none of {', '.join(sources)} applies to {title}"
    raise PipelineError(f"{title} not found (tried sources: {listed}): {where}")


def download_file(url: str, dest: Path, log, what: str) -> bool:
    """Download ``url`` to ``dest`` atomically (5 s timeout per network operation); False on failure."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except Exception as err:  # offline, DNS failure, HTTP error, timeout: fall through to the next source
        log(f"{what}: download of {url} failed ({type(err).__name__}); trying the next source")
        return False
    return True
