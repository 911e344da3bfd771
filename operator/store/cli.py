"""``stigmer-operator store ...``: look inside the embedded store, even while the operator runs.

The operator holds the store's only read-write handle (RocksDB allows one
writer per directory), so these commands open it as a *secondary* (which
reads the writer's latest state) and fall back to *read-only* (a snapshot
as of opening) when a secondary cannot be set up. Nothing here writes; the
commands that do (backup, restore, migrate, prune, compact) are registered
from :mod:`.cli_admin`.

Every inspection command is one :class:`Command`: a name, its arguments and
a function from an open store to a document. ``verify`` also reads the
cluster and has an exit code of its own (4: drift), so it has its own handler.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.cli import ExitCode, Handler, fail
from stigmer_operator.store import cli_admin, records, render
from stigmer_operator.store.errors import (
    NotFoundError,
    StoreError,
)
from stigmer_operator.store.opening import open_for_reading
from stigmer_operator.store.rocks import RocksStore

PATH_ENV = "STIGMER_STORE_PATH"
DEFAULT_PATH = Path(".stigmer/store")

Run = Callable[[RocksStore, argparse.Namespace], render.Document]


@dataclass(frozen=True, slots=True)
class Command:
    """One ``store`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Run
    #: The table ``-o table`` prints (the default when set); None: JSON by default.
    columns: Sequence[render.Column] | None = None


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """``NAMESPACE/NAME`` of a Kubernetes object, or (``namespace`` None) a store id."""

    namespace: str | None
    name: str


# -- argument types -------------------------------------------------------------


def _kind(text: str) -> Kind:
    try:
        return Kind.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _object_ref(text: str) -> ObjectRef:
    namespace, slash, name = text.partition("/")
    if not slash:
        return ObjectRef(namespace=None, name=text)  # an id (agt-..., ain-...)
    if not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, got {text!r}")
    return ObjectRef(namespace=namespace, name=name)


def _sequence(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a sequence number >= 0, got {text!r}")
    return value


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a version number >= 1, got {text!r}")
    return value


def _add_kind_and_ref(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", type=_kind, metavar="KIND", help="agent|ag|agentinstance|agi")
    parser.add_argument("ref", type=_object_ref, metavar="NAMESPACE/NAME")


def _add_get_arguments(parser: argparse.ArgumentParser) -> None:
    _add_kind_and_ref(parser)
    parser.add_argument(
        "--version",
        type=_version,
        metavar="N",
        help="print version N from the history as a manifest (kubectl apply-able)",
    )


def _add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    _add_kind_and_ref(parser)
    parser.add_argument("older", type=_version, metavar="V1")
    parser.add_argument("newer", type=_version, metavar="V2")


def _add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", type=_kind, metavar="KIND", help="agent|ag|agentinstance|agi")
    parser.add_argument("--org", help="only resources of this organization (index scan)")


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=_sequence, default=0, metavar="SEQ", help="entries after SEQ"
    )


def _no_arguments(_parser: argparse.ArgumentParser) -> None:
    """The command takes only the common options."""


# -- commands -------------------------------------------------------------------


def _get(store: RocksStore, args: argparse.Namespace) -> render.Document:
    kind: Kind = args.kind
    ref: ObjectRef = args.ref
    if args.version is not None:
        return render.manifest(_version_of(store, kind, ref, args.version))
    if ref.namespace is None:
        return render.message(store.get(kind, ref.name))
    return render.message(store.get_by_name(kind, ref.namespace, ref.name))


def _list(store: RocksStore, args: argparse.Namespace) -> render.Document:
    kind: Kind = args.kind
    org: str | None = args.org
    resources = store.list(kind) if org is None else store.list_by_org(kind, org)
    return render.messages(resources)


def _history(store: RocksStore, args: argparse.Namespace) -> render.Document:
    kind: Kind = args.kind
    resource_id = _resolve_id(store, kind, args.ref)
    entries = store.history(kind, resource_id)
    if not entries:
        raise NotFoundError(f"no history for {kind.value} {resource_id}")
    return render.messages(entries)


def _diff(store: RocksStore, args: argparse.Namespace) -> render.Document:
    """A unified diff of the manifests of two versions (nothing when they are equal)."""
    kind: Kind = args.kind
    older = render.manifest(_version_of(store, kind, args.ref, args.older))
    newer = render.manifest(_version_of(store, kind, args.ref, args.newer))
    return render.diff(older, newer, f"version {args.older}", f"version {args.newer}")


def _version_of(store: RocksStore, kind: Kind, ref: ObjectRef, version: int) -> Resource:
    resource_id = _resolve_id(store, kind, ref)
    for entry in store.history(kind, resource_id):
        if entry.version == version:
            return records.history_resource(entry)
    raise NotFoundError(
        f"{kind.value} {resource_id} has no version {version} (see `store history`; "
        "retention may have dropped it)"
    )


def _log(store: RocksStore, args: argparse.Namespace) -> render.Document:
    since: int = args.since
    return render.messages(store.changes(since))


def _dump(store: RocksStore, _args: argparse.Namespace) -> render.Document:
    return {
        "agents": render.messages(store.list(Kind.AGENT)),
        "agentInstances": render.messages(store.list(Kind.AGENT_INSTANCE)),
        "ownership": render.messages(store.iter_ownership()),
        "history": render.messages(store.iter_history()),
        "changes": render.messages(store.changes()),
        "stats": render.stats(store.stats()),
    }


def _stats(store: RocksStore, _args: argparse.Namespace) -> render.Document:
    return render.stats(store.stats())


def _resolve_id(store: RocksStore, kind: Kind, ref: ObjectRef) -> str:
    """The id of ``ref``: a live object's, else the newest one the change log names.

    The log fallback lets ``history`` find a deleted object by name.
    """
    if ref.namespace is None:
        return ref.name
    with contextlib.suppress(NotFoundError):
        return store.get_by_name(kind, ref.namespace, ref.name).metadata.id
    found = ""
    for entry in store.changes():
        if (
            Kind.from_proto(entry.kind) is kind
            and entry.namespace == ref.namespace
            and entry.name == ref.name
        ):
            found = entry.id
    if not found:
        raise NotFoundError(f"{kind.value} {ref.namespace}/{ref.name} not found")
    return found


def _change(row: dict[str, Any]) -> object:
    return str(row.get("change", "")).removeprefix("CHANGE_TYPE_").lower()


def _log_kind(row: dict[str, Any]) -> object:
    return Kind.from_proto(store_pb2.ResourceKind.Value(str(row["kind"]))).value


def _short_hash(row: dict[str, Any]) -> object:
    return str(row.get("specHash", ""))[:12]


LIST_COLUMNS = (
    render.Column("NAMESPACE", render.field("metadata", "namespace")),
    render.Column("NAME", render.field("metadata", "name")),
    render.Column("ID", render.field("metadata", "id")),
    render.Column("ORG", render.field("metadata", "org")),
    render.Column("GENERATION", render.field("metadata", "generation")),
)
HISTORY_COLUMNS = (
    render.Column("VERSION", render.field("version")),
    render.Column("GENERATION", render.field("generation")),
    render.Column("CHANGE", _change),
    render.Column("RECORDED", render.field("recordedAt")),
    render.Column("SPEC-HASH", _short_hash),
)
LOG_COLUMNS = (
    render.Column("SEQ", render.field("sequence")),
    render.Column("RECORDED", render.field("recordedAt")),
    render.Column("CHANGE", _change),
    render.Column("KIND", _log_kind),
    render.Column("NAMESPACE", render.field("namespace")),
    render.Column("NAME", render.field("name")),
    render.Column("GENERATION", render.field("generation")),
    render.Column("PUBLISHED", lambda row: bool(row.get("published"))),
)

COMMANDS: list[Command] = [
    Command("get", "one live resource, or --version N as a manifest", _add_get_arguments, _get),
    Command("list", "live resources of a kind", _add_list_arguments, _list, LIST_COLUMNS),
    Command(
        "history",
        "versions of a resource, newest first",
        _add_kind_and_ref,
        _history,
        HISTORY_COLUMNS,
    ),
    Command("diff", "what changed between two versions", _add_diff_arguments, _diff),
    Command("log", "the change log, oldest first", _add_log_arguments, _log, LOG_COLUMNS),
    Command("dump", "everything in the store", _no_arguments, _dump),
    Command("stats", "counts and size on disk", _no_arguments, _stats),
]


# -- plumbing -------------------------------------------------------------------


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``store`` and its subcommands to the top-level parser; returns ``store``'s parser."""
    store_parser: argparse.ArgumentParser = subparsers.add_parser(
        "store",
        help="inspect the embedded store (safe while the operator runs)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    commands = store_parser.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    common = _common_options()
    for command in COMMANDS:
        parser = commands.add_parser(command.name, help=command.help, parents=[common])
        command.add_arguments(parser)
        parser.set_defaults(func=_handler(command))
    verify = commands.add_parser(
        "verify",
        help="compare the mirror with the cluster ($KUBECONFIG); exit 4 on drift",
        parents=[common],
    )
    verify.add_argument(
        "--namespace", dest="namespaces", action="append", default=[],
        help="only these namespaces (repeatable; default: all)",
    )  # fmt: skip
    verify.set_defaults(func=_verify)
    cli_admin.register(
        commands, common, resolve_path=store_path, write=_write, output_format=output_format
    )
    return store_parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--path",
        type=Path,
        default=None,
        help=f"store directory (default: ${PATH_ENV}, else {DEFAULT_PATH})",
    )
    common.add_argument(
        "--format",
        "-o",
        type=render.OutputFormat,
        choices=list(render.OutputFormat),
        default=None,
        help="output format (default: table for list, history and log; json otherwise)",
    )
    return common


def store_path(explicit: Path | None) -> Path:
    """``--path``, else ``$STIGMER_STORE_PATH``, else ``.stigmer/store``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(PATH_ENV)
    return Path(from_env) if from_env else DEFAULT_PATH


def _handler(command: Command) -> Handler:
    def handle(args: argparse.Namespace) -> int:
        return _execute(command, args)

    return handle


def output_format(args: argparse.Namespace, *, tabular: bool = False) -> render.OutputFormat:
    """``-o``, else a table for tabular commands and JSON for the others."""
    chosen: render.OutputFormat | None = args.format
    if chosen is not None:
        return chosen
    return render.OutputFormat.TABLE if tabular else render.OutputFormat.JSON


def _execute(command: Command, args: argparse.Namespace) -> int:
    try:
        store = open_for_reading(store_path(args.path))
    except StoreError as exc:
        fail(exc)
        return ExitCode.CANNOT_OPEN
    try:
        with store:
            document = command.run(store, args)
    except NotFoundError as exc:
        fail(exc)
        return ExitCode.NOT_FOUND
    except StoreError as exc:
        fail(exc)
        return ExitCode.CANNOT_OPEN
    output = output_format(args, tabular=command.columns is not None)
    return _write(render.render(document, output, command.columns))


def _verify(args: argparse.Namespace) -> int:
    """``store verify``: every accepted object mirrored at its generation, nothing stale."""
    from stigmer_operator.kubeclient import load_api_client  # the cluster only when asked
    from stigmer_operator.sweep import compare, list_cluster_objects

    try:
        store = open_for_reading(store_path(args.path))
    except StoreError as exc:
        fail(exc)
        return ExitCode.CANNOT_OPEN
    with store:
        api_client = load_api_client()
        drifts = [
            drift
            for kind in Kind
            for drift in compare(
                store, kind, list_cluster_objects(api_client, kind, args.namespaces),
                args.namespaces,
            )
        ]  # fmt: skip
        counts = {kind.value: sum(1 for _ in store.list(kind)) for kind in Kind}
    report = {"mirrored": counts, "drift": [str(d) for d in drifts]}
    _write(render.render(report, output_format(args)))
    return ExitCode.DRIFT if drifts else ExitCode.OK


def _write(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return ExitCode.OK
