"""Store errors: one base class, one subclass per thing a caller can act on.

A missing key raises :class:`NotFoundError`, never returns ``None``. Opening
problems (locked, missing, corrupt, foreign) each have a class whose message
is one line a human can act on; the CLI prints it and exits non-zero.
A store that cannot write for lack of space or a read-only filesystem is
told apart from a damaged one (:class:`StoreUnwritableError`): the operator
keeps running on it.
"""

import errno


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


class StoreUnwritableError(StoreError):
    """The store takes no writes: its disk is full or its filesystem is read-only.

    Not damage: every entry written before is intact and readable. The
    operator keeps reconciling the cluster without its mirror (see
    :mod:`~stigmer_operator.store.degraded`). ``cause`` is the short,
    stable reason ("no space left on device", "read-only file system").
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class StoreUnwritableOpenError(StoreOpenError, StoreUnwritableError):
    """A read-write open failed because the disk is full or the filesystem read-only."""


#: What the OS (and RocksDB, quoting it) says when a write cannot happen, by errno.
_UNWRITABLE = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


def unwritable_cause(detail: str) -> str | None:
    """The cause if an error message says the filesystem takes no writes, else None."""
    lowered = detail.lower()
    for cause in _UNWRITABLE.values():
        if cause in lowered:
            return cause
    return None


def unwritable_errno(error: OSError) -> str | None:
    """The cause if an OSError says the filesystem takes no writes, else None."""
    return _UNWRITABLE.get(error.errno or 0)


def open_error(message: str, error: OSError) -> StoreOpenError:
    """An open that failed on ``error``: unwritable (full, read-only) or not."""
    cause = unwritable_errno(error)
    if cause is not None:
        return StoreUnwritableOpenError(message, cause)
    return StoreOpenError(message)


class StoreReadOnlyError(StoreError):
    """A write was attempted through a read-only or secondary handle."""


class UidMismatchError(StoreError):
    """A save would replace the entry of another Kubernetes object.

    Ids are derived from uids, so an entry whose uid differs from the one
    being saved under the same id was written by someone else: nothing is
    overwritten.
    """

    def __init__(self, kind: str, resource_id: str, stored_uid: str, incoming_uid: str) -> None:
        super().__init__(
            f"{kind} {resource_id} is held by uid {stored_uid}; refusing to overwrite it "
            f"with the object of uid {incoming_uid}"
        )
        self.resource_id = resource_id
        self.stored_uid = stored_uid
        self.incoming_uid = incoming_uid


def held_by(stored_uid: str, uid: str | None) -> bool:
    """May the object of ``uid`` replace or remove an entry holding ``stored_uid``?

    ``None`` (a caller that names no object) and an entry without a uid
    (never written by the pipeline) always may.
    """
    return uid is None or not stored_uid or stored_uid == uid


def check_same_uid(kind: str, resource_id: str, stored_uid: str, incoming_uid: str) -> None:
    """Raise :class:`UidMismatchError` unless the stored entry is the same object's."""
    if not held_by(stored_uid, incoming_uid):
        raise UidMismatchError(kind, resource_id, stored_uid, incoming_uid)


class OlderGenerationError(StoreError):
    """A save carried an older generation of an object than the store holds.

    The run that built it read the object before a newer version was
    reconciled; writing it would roll the mirror (and history) back.
    """
