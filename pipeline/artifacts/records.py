"""Reading the workflow's small JSON files (attack results and summaries, learning-curve points, study results):
a JSON object with the keys its owner writes, or one clear error saying how to get a good one."""

import json
from pathlib import Path

from ..errors import PipelineError

FIX = "delete it and run snakemake again"


def read_json_record(path, keys: set, name: str, fix: str = FIX) -> dict:
    """The JSON object in ``path``, which holds at least ``keys``; ``name``: what the file is (e.g. "attack
    result"), for the message of an unreadable or foreign file."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: unreadable {name} ({type(err).__name__}: {err}); {fix}") from None
    if not isinstance(record, dict) or not keys <= set(record):
        article = "an" if name[0] in "aeiou" else "a"
        raise PipelineError(f"{path}: not {article} {name}; {fix}")
    return record
