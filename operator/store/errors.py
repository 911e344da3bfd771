"""Store errors: one base class, one subclass per thing a caller can act on.

A missing key raises :class:`NotFoundError`, never returns ``None``. Opening
problems (locked, missing, corrupt, foreign) each have a class whose message
is one line a human can act on; the CLI prints it and exits non-zero.
"""


class StoreError(Exception):
    """Base class of every store failure."""


class NotFoundError(StoreError, KeyError):
    """The requested resource, history or record does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class StoreOpenError(StoreError):
    """The database could not be opened; the message says why and what to do."""


class StoreLockedError(StoreOpenError):
    """Another process holds the database open for writing."""


class StoreMissingError(StoreOpenError):
    """No database exists at the path (and the caller did not ask to create one)."""


class StoreCorruptError(StoreOpenError):
    """The files at the path are damaged."""


class ForeignDatabaseError(StoreOpenError):
    """A RocksDB database exists at the path but was not written by this operator."""


class StoreReadOnlyError(StoreError):
    """A write was attempted through a read-only or secondary handle."""


class OlderGenerationError(StoreError):
    """A save carried an older generation of an object than the store holds.

    The run that built it read the object before a newer version was
    reconciled; writing it would roll the mirror (and history) back.
    """
