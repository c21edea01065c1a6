"""Soundness in the loop: no attack of budget B may change a prediction certified at radius >= B.

A violation is a security bug (in a certificate, or in the pipeline that computed it), never a warning: the
attack stage stops with a message naming the sample, the method and the budget.
"""

import numpy as np

from ..certify import label_of
from ..errors import PipelineError


def check(attack: str, budget: int, methods, radius: dict, clean: dict, attacked: dict, inputs="test sample",
          ids=None) -> int:
    """Raise PipelineError if any input certified at radius >= ``budget`` (radius: {method: int64[n]}, -1 where
    not certified) has an attacked prediction (attacked: {method: int64[n]}) other than its clean one.

    ``ids``: the inputs' names in the message (test sample ids; default their index). Returns how many
    (input, method) certificates the attack was checked against.
    """
    checked = 0
    for m in methods:
        certified = radius[m] >= budget
        bad = np.flatnonzero(certified & (attacked[m] != clean[m]))
        if bad.size:
            i = int(bad[0])
            name = int(ids[i]) if ids is not None else i
            raise PipelineError(
                f"soundness violated: the {attack} attack with budget {budget} changed the {label_of(m)} prediction "
                f"of {inputs} {name} from {int(clean[m][i])} to {int(attacked[m][i])}, but its {label_of(m)} "
                f"certificate says radius {int(radius[m][i])} >= {budget}" + (f" ({bad.size} such samples)" if
                                                                             bad.size > 1 else "")
                + "; a certificate was wrong: this is a security bug, report it with the run's params.yaml")
        checked += int(certified.sum())
    return checked
