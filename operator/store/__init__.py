"""The embedded resource store: protocol, RocksDB and in-memory implementations.

RocksDB stays behind :class:`Store`; the key layout lives in :mod:`.keys` only.
"""

from stigmer_operator.store.errors import (
    ForeignDatabaseError,
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreMissingError,
    StoreOpenError,
    StoreReadOnlyError,
)
from stigmer_operator.store.protocol import Store, StoreStats

__all__ = [
    "ForeignDatabaseError",
    "NotFoundError",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreMissingError",
    "StoreOpenError",
    "StoreReadOnlyError",
    "StoreStats",
]
