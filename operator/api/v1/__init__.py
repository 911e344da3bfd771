"""Protobuf modules generated from ``proto/stigmer_operator/api/v1``.

Regenerate with ``make protos``; ``tests/unit/test_protos_drift.py`` fails when
these files and ``proto/`` disagree. Do not edit the ``*_pb2`` files by hand.
"""
