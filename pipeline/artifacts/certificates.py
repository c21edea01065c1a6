"""Certificates: ``work/<run>/certificates.parquet``, written by the certify stage.

One row per test sample: ``test_id`` int32, ``label`` int16, ``prediction`` int16 and ``radius_<method>``
int32 for the aggregation's certificate (dpa or fa), and with Run-Off Election ``prediction_roe`` int16
and ``radius_<method>_roe`` int32. A radius counts inserted + removed training samples; -1 marks a
wrong prediction. The schema metadata (key PROVENANCE_KEY) holds the run's provenance as JSON.
"""

import json

import numpy as np

from ..atomic import write_parquet
from .predictions import PROVENANCE_KEY


def certificates_table(labels: np.ndarray, results: dict, origin: dict):
    """The table from labels int[n] and {method: (prediction int[n], radius int[n])}, with provenance ``origin``."""
    import pyarrow as pa

    columns = {"test_id": np.arange(len(labels), dtype=np.int32), "label": labels.astype(np.int16)}
    for method, (prediction, radius) in results.items():
        suffix = "_roe" if method.endswith("_roe") else ""
        columns.setdefault(f"prediction{suffix}", prediction.astype(np.int16))
        columns[f"radius_{method}"] = radius.astype(np.int32)
    return pa.table(columns).replace_schema_metadata({PROVENANCE_KEY: json.dumps(origin, sort_keys=True)})


def write_certificates(path, labels, results: dict, origin: dict) -> None:
    write_parquet(path, certificates_table(labels, results, origin))


def read_certificates(path):
    """(pandas.DataFrame of the certificates, the provenance dict they record)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.to_pandas(), json.loads((table.schema.metadata or {}).get(PROVENANCE_KEY, b"{}"))
