"""Bounded prefix scans over a rocksdict database, shared by the store and its migrations."""

from __future__ import annotations

from collections.abc import Iterator

import rocksdict

from stigmer_operator.store import keys


def bounded(prefix: bytes) -> rocksdict.ReadOptions:
    """Read options that end a scan at the end of ``prefix``.

    The caller must keep the returned object referenced until its iterator
    is exhausted: rocksdict's iterators do not hold on to their ReadOptions,
    and once it is collected the bound points at freed memory (scans then
    stop early at random).
    """
    read = rocksdict.ReadOptions()
    read.set_iterate_upper_bound(keys.prefix_end(prefix))
    return read


def items(db: rocksdict.Rdict, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) under ``prefix``, in key order."""
    read = bounded(prefix)  # referenced by this frame until the scan ends
    yield from db.items(from_key=prefix, read_opt=read)


def keys_of(db: rocksdict.Rdict, prefix: bytes) -> Iterator[bytes]:
    """Every key under ``prefix``, in key order."""
    read = bounded(prefix)
    yield from db.keys(from_key=prefix, read_opt=read)
