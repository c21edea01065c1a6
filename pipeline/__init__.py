"""Certified defenses against training-data poisoning by aggregation (DPA, FA, ROE).

Every workflow stage is a subcommand of ``python -m pipeline``; the modules hold the
logic as small functions over numpy arrays so they can be tested without Snakemake.
"""

__version__ = "0.1.0"
