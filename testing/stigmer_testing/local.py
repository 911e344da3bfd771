"""``stigmer-operator-dev``: the operator on this machine in one command.

``make run`` calls it. It is a developer tool of the dev-only
``stigmer_testing`` distribution, not a subcommand of the shipped
``stigmer-operator`` (the image has no control plane to start).

With ``$KUBECONFIG`` set it uses that cluster; without, it starts the local
control plane built from Go modules (the same one the tests use), so a fresh
machine with Python and Go can see the operator work without Docker or a
cloud account. It applies the CRDs, runs the operator with its store under
``.stigmer/``, applies ``examples/agent.yaml``, waits for Ready and prints
``kubectl get ag,agi``. Then it keeps running until Ctrl-C (``--once`` stops
right away: what the test of this command uses).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stigmer_testing.controlplane import ControlPlane, find_binaries
from stigmer_testing.operator_process import OperatorProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stigmer-operator-dev",
        description="Run the operator locally (own control plane unless $KUBECONFIG is set).",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(".stigmer"),
        help="directory for the store, logs and kubeconfig (default .stigmer)",
    )
    parser.add_argument("--example", type=Path, default=REPO_ROOT / "examples" / "agent.yaml")
    parser.add_argument("--namespace", default="default")
    parser.add_argument(
        "--once", action="store_true", help="stop after the example is Ready (for tests and CI)"
    )
    return parser


def run(state: Path, example: Path, namespace: str, *, once: bool) -> int:
    state.mkdir(parents=True, exist_ok=True)
    with _cluster(state) as (kubeconfig, kubectl):
        print(f"cluster: KUBECONFIG={kubeconfig}", flush=True)
        with OperatorProcess(kubeconfig, state / "store", log_path=state / "operator.log") as op:
            print(f"operator: pid {op.pid}, log {op.log_path}", flush=True)
            kubectl("apply", "-n", namespace, "-f", str(example))
            for kind in ("agent", "agentinstance"):
                kubectl(
                    "wait",
                    "-n",
                    namespace,
                    "--for=condition=Ready",
                    kind,
                    "--all",
                    "--timeout=120s",
                )
            print(kubectl("get", "ag,agi", "-n", namespace), flush=True)
            if not once:
                print(
                    "running; Ctrl-C stops the operator"
                    + ("" if os.environ.get("KUBECONFIG") else " and the control plane"),
                    flush=True,
                )
                _wait_for_signal()
    return 0


@contextlib.contextmanager
def _cluster(state: Path) -> Iterator[tuple[Path, Any]]:
    kubectl_binary = find_binaries() / "kubectl"
    configured = os.environ.get("KUBECONFIG")
    if configured:
        kubeconfig = Path(configured)
        kubectl = _kubectl(kubectl_binary, kubeconfig)
        kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
        yield kubeconfig, kubectl
        return
    with ControlPlane(crds=REPO_ROOT / "crds") as plane:
        kubeconfig = state / "kubeconfig"
        kubeconfig.write_bytes(plane.admin_kubeconfig.read_bytes())
        yield kubeconfig, _kubectl(kubectl_binary, kubeconfig)


def _kubectl(binary: Path, kubeconfig: Path) -> Any:
    def kubectl(*args: str) -> str:
        result = subprocess.run(
            [str(binary), f"--kubeconfig={kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    return kubectl


def _wait_for_signal() -> None:
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: received.append(number))
    while not received:
        signal.pause()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.state, args.example, args.namespace, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
