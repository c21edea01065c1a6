"""Progress bars: tqdm on a terminal, silent otherwise (logs stay readable)."""

import sys

from tqdm import tqdm


def bar(iterable, desc: str, total=None):
    return tqdm(iterable, desc=desc, total=total, disable=None, file=sys.stderr, dynamic_ncols=True)
