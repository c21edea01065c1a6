"""A restricted unpickler that only rebuilds numpy arrays.

Pickles can run arbitrary code when loaded. This loader admits exactly the three globals
that numpy array reconstruction needs and refuses every other one, so a file that carries
anything else (a function call, an object of another class) fails with a clear error.
Call it only on bytes whose SHA-256 already matched a known digest.
"""

import io
import pickle

import numpy as np

from ..errors import PipelineError

_RECONSTRUCT = np.array(0).__reduce__()[0]  # numpy's array rebuild function, any numpy version

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def load_numpy_pickle(data: bytes, what: str):
    """Unpickle ``data`` (Python 2 or 3 pickle) admitting only numpy arrays and plain containers."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise PipelineError(f"{what}: not a plain numpy pickle ({err}); the file is not the expected one, delete it") from None
    except Exception as err:  # truncated or garbled stream
        raise PipelineError(f"{what}: unreadable pickle ({type(err).__name__}: {err}); delete it and prepare again") from None
