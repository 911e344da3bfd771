"""Tests of the API layer: validation contract, converters, generated CRDs, examples."""
