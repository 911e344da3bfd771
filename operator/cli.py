"""``stigmer-operator``: the one command line of the project.

This module is only a dispatcher. Each subcommand lives in its own module,
which exposes ``register(subparsers)``: it adds its parser and sets
``func`` (``Callable[[argparse.Namespace], int]``) as the parser default.
Adding a subcommand means adding its module to :data:`SUBCOMMAND_MODULES`;
nothing here knows what any subcommand does.

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

#: Modules that each add one subcommand (``register(subparsers)``), in help order.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "stigmer_operator.runtime",
    "stigmer_operator.store.cli",
    "stigmer_operator.api.crdgen",
)

Handler = Callable[[argparse.Namespace], int]


class ExitCode(enum.IntEnum):
    """Process exit status of every subcommand."""

    OK = 0
    NOT_FOUND = 1
    USAGE = 2
    CANNOT_OPEN = 3
    INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: object) -> None:
    """Print one error line on stderr."""
    text = " ".join(str(message).split())
    print(f"stigmer-operator: {text}", file=sys.stderr)


def build_parser() -> Parser:
    parser = Parser(
        prog="stigmer-operator",
        description="Kubernetes operator for Agent and AgentInstance resources.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    parser = build_parser()
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
