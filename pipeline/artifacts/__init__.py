"""Artifact owners: one module per file the workflow writes, defining its schema, writer and reader.

Every other module reads and writes these files only through their owner (docs/design.md#artifacts).
"""
