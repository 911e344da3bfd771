"""Dev-only test and local-run support: a real control plane built from Go modules.

A distribution of its own (``testing/pyproject.toml``), never part of the
stigmer-operator wheel or image.
"""
