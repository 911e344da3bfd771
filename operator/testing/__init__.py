"""Test and local-run support: a real control plane built from Go modules."""
