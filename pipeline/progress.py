"""Progress bars: a live tqdm bar on a terminal; in log files, a line every 15 seconds at most."""

import sys

from tqdm import tqdm


def bar(iterable, desc: str, total=None):
    live = sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, dynamic_ncols=live, ascii=not live,
                mininterval=0.1 if live else 15)
