"""Certificates, one module per method. All functions are vectorised over test samples."""
