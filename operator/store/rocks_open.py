"""Opening a RocksDB store directory: tuning, inspection, format checks, error lines.

Opening is careful because the store is usually opened by two parties: the
operator (the one read-write handle) and ``stigmer-operator store ...``
(read-only or as a secondary, while the operator runs). An open never
creates a database unless asked to, never writes to a database that lacks
our format marker, and turns every RocksDB failure into one of the
:mod:`~stigmer_operator.store.errors` classes with a one-line message that
says what to do. :class:`~stigmer_operator.store.rocks.RocksStore` is the
only caller; the operator's and the CLI's entry points are in
:mod:`~stigmer_operator.store.opening`.

Why these settings (``_options``):

* ``raw_mode``: keys and values are our bytes, not pickles; the key layout
  lives in :mod:`stigmer_operator.store.keys`.
* LZ4 for fresh data, Zstandard with a trained 16 KiB dictionary for the
  bottommost level: most bytes end up at the bottom, where the ratio matters
  and the slower codec is paid once per compaction. The dictionary is what
  makes small records compress: Agents repeat the same field names, server
  names, env names and URLs, which no 4 KiB block holds enough of to learn.
* A whole-key bloom filter and a row cache: ``get``, ``get_by_slug`` and
  ``get_by_name`` are point lookups. A miss (CheckDuplicate asking for a free
  slug) should not touch a data block, and a hit on a hot key (Authorize
  reading an Agent again and again) should not search one: the row cache
  answers it from a hash table.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import tempfile
from pathlib import Path

import rocksdict

from stigmer_operator.store import keys, migrate
from stigmer_operator.store.errors import (
    ForeignDatabaseError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreOpenError,
    StoreUnwritableOpenError,
    unwritable_cause,
)

_BLOCK_CACHE_BYTES = 32 * 1024 * 1024
_ROW_CACHE_BYTES = 16 * 1024 * 1024
_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
_MAX_WAL_BYTES = 64 * 1024 * 1024
_BLOOM_BITS_PER_KEY = 10
_ZSTD_LEVEL = 3
_ZSTD_DICTIONARY_BYTES = 16 * 1024
_ZSTD_TRAIN_FACTOR = 100  # sample 100x the dictionary size to train it
_ZLIB_WINDOW_BITS = -14  # RocksDB's default; zstd ignores it
_ROCKSDICT_CONFIG = "rocksdict-config.json"


class OpenMode(enum.Enum):
    """How a handle opens the database."""

    #: The operator's handle; at most one process holds it (RocksDB's LOCK file).
    READ_WRITE = "read-write"
    #: A consistent view as of the moment of opening; works while a writer runs.
    READ_ONLY = "read-only"
    #: Follows a running writer (call :meth:`RocksStore.refresh` to catch up).
    SECONDARY = "secondary"


class Location(enum.Enum):
    """What is at the path before RocksDB is asked to open it."""

    ABSENT = "absent"
    EMPTY_DIRECTORY = "empty directory"
    DATABASE = "database"
    DAMAGED_DATABASE = "damaged database"
    NOT_A_DIRECTORY = "not a directory"
    OTHER_FILES = "other files"


def _options(mode: OpenMode, *, create: bool) -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(create)
    options.set_compression_type(rocksdict.DBCompressionType.lz4())
    options.set_bottommost_compression_type(rocksdict.DBCompressionType.zstd())
    options.set_bottommost_compression_options(
        _ZLIB_WINDOW_BITS, _ZSTD_LEVEL, 0, _ZSTD_DICTIONARY_BYTES, True
    )
    options.set_bottommost_zstd_max_train_bytes(_ZSTD_DICTIONARY_BYTES * _ZSTD_TRAIN_FACTOR, True)
    options.set_level_compaction_dynamic_level_bytes(True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_total_wal_size(_MAX_WAL_BYTES)
    options.set_max_background_jobs(2)
    options.set_keep_log_file_num(3)
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
    table.set_block_cache(rocksdict.Cache(_BLOCK_CACHE_BYTES))
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options.set_block_based_table_factory(table)
    options.set_row_cache(rocksdict.Cache(_ROW_CACHE_BYTES))
    if mode is OpenMode.SECONDARY:
        # A secondary keeps every table file open: the writer may delete
        # compacted files the secondary still reads from.
        options.set_max_open_files(-1)
    return options


def _access(mode: OpenMode, secondary_dir: Path | None) -> rocksdict.AccessType:
    if mode is OpenMode.READ_ONLY:
        # A running writer always has a WAL; reading it is the point.
        return rocksdict.AccessType.read_only(False)
    if mode is OpenMode.SECONDARY:
        if secondary_dir is None:
            raise ValueError("a secondary handle needs a directory of its own")
        return rocksdict.AccessType.secondary(str(secondary_dir))
    return rocksdict.AccessType.read_write()


def new_secondary_dir() -> Path:
    """A fresh directory for a secondary handle's own files (removed when it closes)."""
    return Path(tempfile.mkdtemp(prefix="stigmer-store-secondary-"))


def open_rdict(
    location: Path,
    mode: OpenMode,
    *,
    create: bool,
    secondary_dir: Path | None = None,
) -> rocksdict.Rdict:
    """Open the database and check its format marker (writing it only on create)."""
    try:
        db = rocksdict.Rdict(
            str(location),
            _options(mode, create=create),
            access_type=_access(mode, secondary_dir),
        )
    except Exception as exc:
        _discard(None, secondary_dir)
        raise _open_error(location, mode, exc) from exc
    try:
        if mode is OpenMode.SECONDARY:
            db.try_catch_up_with_primary()
        if not create:
            _check_marker(db, location)
    except StoreOpenError:
        _discard(db, secondary_dir)
        raise
    except Exception as exc:
        _discard(db, secondary_dir)
        raise _open_error(location, mode, exc) from exc
    return db


def _discard(db: rocksdict.Rdict | None, secondary_dir: Path | None) -> None:
    """Release what a failed open acquired."""
    if db is not None:
        db.close()
    if secondary_dir is not None:
        shutil.rmtree(secondary_dir, ignore_errors=True)


def _check_marker(db: rocksdict.Rdict, location: Path) -> None:
    """Accept a store of this build's schema or an older one (which can be migrated)."""
    marker = db.get(keys.FORMAT_KEY)
    if marker is None:
        raise ForeignDatabaseError(
            f"{location} holds a RocksDB database that is not a stigmer-operator store "
            "(no format marker); refusing to touch it: point --path elsewhere"
        )
    version = keys.schema_version(marker) if isinstance(marker, bytes) else None
    if version is None or not 1 <= version <= keys.SCHEMA_VERSION:
        raise ForeignDatabaseError(
            f"{location} is a store of format {marker!r}, this build reads up to "
            f"{keys.FORMAT_MARKER!r}: use a matching stigmer-operator version"
        )


def migrated(db: rocksdict.Rdict, location: Path) -> None:
    """Bring a read-write database to this build's schema; on failure, close it."""
    try:
        migrate.upgrade(db, location)
    except StoreError as exc:
        db.close()
        raise StoreOpenError(f"{exc}: the store is unchanged from its last schema step") from exc


def inspect(location: Path) -> Location:
    """Look at the path without RocksDB: it must not create or rewrite anything."""
    if not location.exists():
        return Location.ABSENT
    if not location.is_dir():
        return Location.NOT_A_DIRECTORY
    names = {entry.name for entry in location.iterdir()}
    if not names:
        return Location.EMPTY_DIRECTORY
    if "CURRENT" in names:
        return Location.DATABASE
    if any(name.startswith("MANIFEST-") or name.endswith(".sst") for name in names):
        return Location.DAMAGED_DATABASE
    return Location.OTHER_FILES


def refuse_non_database(location: Path, state: Location) -> None:
    """Raise the open error for a path that holds something other than a database."""
    if state is Location.NOT_A_DIRECTORY:
        raise StoreOpenError(f"{location} is a file, not a store directory: check --path")
    if state is Location.DAMAGED_DATABASE:
        raise StoreCorruptError(
            f"the store at {location} is corrupt (RocksDB files but no CURRENT file): restore "
            "a backup, or move it aside and let the operator rebuild it from the cluster"
        )
    if state is Location.OTHER_FILES:
        raise ForeignDatabaseError(
            f"{location} is not empty and holds no RocksDB database; refusing to create a "
            "store over it: point --path at an empty or missing directory"
        )


def refuse_foreign_rocksdict(location: Path) -> None:
    """Refuse a database another rocksdict program wrote in pickle mode.

    rocksdict rewrites its config file on every open, even a read-only one,
    so opening such a database with ``raw_mode`` would break it for its
    owner. Read the config ourselves and stop before RocksDB is involved.
    """
    config_path = location / _ROCKSDICT_CONFIG
    if not config_path.exists():
        return
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreCorruptError(
            f"the store at {location} has an unreadable {_ROCKSDICT_CONFIG} ({exc}): "
            "restore a backup, or move it aside and let the operator rebuild it"
        ) from exc
    if not isinstance(config, dict) or config.get("raw_mode") is not True:
        raise ForeignDatabaseError(
            f"{location} holds a rocksdict database not written by stigmer-operator "
            "(not in raw mode); refusing to touch it: point --path elsewhere"
        )


def one_line(text: str) -> str:
    """RocksDB's multi-line messages as one line, for the error classes' messages."""
    return re.sub(r"\s+", " ", text).strip()


def _open_error(location: Path, mode: OpenMode, exc: Exception) -> StoreOpenError:
    """Translate a RocksDB open failure into an error class with an actionable line."""
    detail = one_line(str(exc))
    lowered = detail.lower()
    if "lock" in lowered and (
        "temporarily unavailable" in lowered or "lock hold" in lowered or "lock file" in lowered
    ):
        return StoreLockedError(
            f"the store at {location} is locked by another writer (the operator is probably "
            "running): inspect it with --read-only, or stop the other process"
        )
    if "comparator" in lowered:
        return ForeignDatabaseError(
            f"{location} holds a RocksDB database with another key order ({detail}); it is "
            "not a stigmer-operator store: point --path elsewhere"
        )
    if lowered.startswith("corruption") or "corrupt" in lowered:
        return StoreCorruptError(
            f"the store at {location} is corrupt ({detail}): restore a backup, or move it "
            "aside and let the operator rebuild it from the cluster"
        )
    if "no such file" in lowered:
        # The directory and its CURRENT file were there a moment ago, so a
        # missing file now means the database is damaged, not absent.
        return StoreCorruptError(
            f"the store at {location} is missing files ({detail}): restore a backup, or "
            "move it aside and let the operator rebuild it from the cluster"
        )
    cause = unwritable_cause(detail)
    if cause is not None:
        return StoreUnwritableOpenError(
            f"cannot open the store at {location} {mode.value}: {detail}", cause
        )
    if "permission denied" in lowered:
        return StoreOpenError(
            f"cannot open the store at {location} {mode.value}: permission denied ({detail})"
        )
    return StoreOpenError(f"cannot open the store at {location} {mode.value}: {detail}")
