"""``stigmer-operator store ...`` commands that change a store or copy it.

Separate from the inspection commands (:mod:`.cli`), which never write:

* ``backup PATH`` copies the store while the operator runs (a consistent
  point in time, see :mod:`.backup`);
* ``restore BACKUP``, ``migrate``, ``prune`` and ``compact`` need the store's
  write lock, so they refuse to run while the operator holds it (exit 3
  with one line saying so). ``prune`` applies the retention policy of the
  same flags and ``STIGMER_*`` variables as ``stigmer-operator run``;
  ``compact`` rewrites the database so deleted entries leave the disk.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stigmer_operator.cli import ExitCode, Handler, fail
from stigmer_operator.store import backup, maintenance, render
from stigmer_operator.store.errors import StoreError, StoreUnwritableError
from stigmer_operator.store.rocks import OpenMode, RocksStore

Action = Callable[[argparse.Namespace, Path], render.Document]

#: What to do when a command that writes finds the volume full or read-only.
NEEDS_ROOM = (
    "RocksDB writes before it deletes, so even prune and compact need some room: free a "
    "little space on the volume (or grow it) and run the command again"
)


def register(
    commands: Any,
    common: argparse.ArgumentParser,
    *,
    resolve_path: Callable[[Path | None], Path],
    write: Callable[[str], int],
    output_format: Callable[[argparse.Namespace], render.OutputFormat],
) -> None:
    """Add the admin subcommands to ``store``'s subparsers.

    ``resolve_path`` turns ``--path`` into the store directory, ``write``
    prints a rendered document and ``output_format`` reads ``-o``: the
    inspection commands' own, passed in.
    """

    def add(name: str, help_text: str, action: Action) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, parents=[common]
        )
        parser.set_defaults(func=_handler(action, resolve_path, write, output_format))
        return parser

    parser = add("backup", "copy the store into a new directory (safe while running)", _backup)
    parser.add_argument("target", type=Path, metavar="PATH", help="a new or empty directory")
    parser = add("restore", "replace the store with a backup (operator stopped)", _restore)
    parser.add_argument("source", type=Path, metavar="BACKUP", help="a `store backup` directory")
    parser.add_argument(
        "--force", action="store_true", help="replace a store that is there (it is lost)"
    )
    add("migrate", "upgrade the store to this release's schema (operator stopped)", _migrate)
    parser = add("prune", "apply the retention policy now (operator stopped)", _prune)
    maintenance.add_arguments(parser)
    add("compact", "rewrite the store so deleted entries free disk (operator stopped)", _compact)


def _handler(
    action: Action,
    resolve_path: Callable[[Path | None], Path],
    write: Callable[[str], int],
    output_format: Callable[[argparse.Namespace], render.OutputFormat],
) -> Handler:
    def handle(args: argparse.Namespace) -> int:
        try:
            document = action(args, resolve_path(args.path))
        except StoreUnwritableError as exc:
            fail(f"{exc}; {NEEDS_ROOM}")
            return ExitCode.CANNOT_OPEN
        except StoreError as exc:
            fail(exc)
            return ExitCode.CANNOT_OPEN
        return write(render.render(document, output_format(args)))

    return handle


def _backup(args: argparse.Namespace, path: Path) -> render.Document:
    copied = backup.backup(path, args.target)
    return {"backup": str(args.target), "keys": copied.keys, "bytes": copied.bytes}


def _restore(args: argparse.Namespace, path: Path) -> render.Document:
    stats = backup.restore(args.source, path, force=args.force)
    return {"restored": str(path), "from": str(args.source), "stats": render.stats(stats)}


def _migrate(_args: argparse.Namespace, path: Path) -> render.Document:
    with RocksStore.open(path, OpenMode.READ_ONLY) as view:
        before = view.schema_version
    with RocksStore.open(path) as store:  # a read-write open migrates
        after = store.schema_version
    return {"store": str(path), "fromSchema": before, "toSchema": after}


def _prune(args: argparse.Namespace, path: Path) -> render.Document:
    from stigmer_operator.settings import OperatorSettings

    overrides = {
        name: getattr(args, name)
        for name in maintenance.FIELDS
        if getattr(args, name, None) is not None
    }
    retention = OperatorSettings(**overrides).retention
    with RocksStore.open(path, retention=retention) as store:
        before = store.stats().bytes_on_disk
        report = store.prune()
        store.compact()
        after = store.stats()
    return {
        "historyEntriesDropped": report.history_entries,
        "deletedResourcesDropped": report.deleted_resources,
        "changeLogEntriesDropped": report.log_entries,
        "bytesBefore": before,
        "stats": render.stats(after),
    }


def _compact(_args: argparse.Namespace, path: Path) -> render.Document:
    with RocksStore.open(path) as store:
        before = store.stats().bytes_on_disk
        store.compact()
        after = store.stats().bytes_on_disk
    return {"store": str(path), "bytesBefore": before, "bytesAfter": after}
