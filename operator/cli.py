"""``stigmer-operator``: the one command line of the project.

This module is only a dispatcher. Each subcommand lives in its own module,
which exposes ``register(subparsers)``: it adds its parser and sets
``func`` (``Callable[[argparse.Namespace], int]``) as the parser default.
Adding a subcommand means adding its name and module to :data:`SUBCOMMANDS`;
nothing here knows what any subcommand does. Every subcommand here works in
the shipped image; the developer's ``make run`` command lives in the
dev-only ``stigmer_testing`` package (``stigmer-operator-dev``), which is
not part of the wheel. Only the module of the chosen
subcommand is imported (all of them for top-level ``--help``), so
``stigmer-operator store get`` does not pay for importing kopf.

Exit codes are shared by every subcommand (:class:`ExitCode`), and errors
are one line on stderr, never a traceback: the people reading them are
operating a cluster, not debugging Python.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from stigmer_operator import __version__

#: Subcommand name -> module whose ``register(subparsers)`` adds it, in help order.
SUBCOMMANDS: dict[str, str] = {
    "run": "stigmer_operator.runtime",
    "store": "stigmer_operator.store.cli",
    "crds": "stigmer_operator.api.crdgen",
}

Handler = Callable[[argparse.Namespace], int]


class ExitCode(enum.IntEnum):
    """Process exit status of every subcommand."""

    OK = 0
    NOT_FOUND = 1
    USAGE = 2
    CANNOT_OPEN = 3
    #: ``store verify`` found the mirror and the cluster disagreeing.
    DRIFT = 4
    INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: object) -> None:
    """Print one error line on stderr."""
    text = " ".join(str(message).split())
    print(f"stigmer-operator: {text}", file=sys.stderr)


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser with the subcommand ``argv`` names registered (every one if none)."""
    chosen = _chosen_subcommand(sys.argv[1:] if argv is None else argv)
    parser = Parser(
        prog="stigmer-operator",
        description="Kubernetes operator for Agent and AgentInstance resources.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        if chosen is None or name == chosen:
            importlib.import_module(module_name).register(subparsers)
    return parser


def _chosen_subcommand(argv: Sequence[str]) -> str | None:
    """The known subcommand ``argv`` starts with (after global options), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    handler: Handler = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
