"""``stigmer-operator store ...`` against a store another process is writing.

The commands run as real processes (the installed console script) while
``store_holder.py`` holds the database read-write, as the operator would.
A few cases that need a store in a particular state run ``main()`` in
process instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rocksdict
import yaml
from store_factories import agent
from store_process import Holder, holding

from stigmer_operator.api import convert
from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.validation import validate_spec
from stigmer_operator.cli import ExitCode, main
from stigmer_operator.store.rocks import RocksStore

CONSOLE_SCRIPT = Path(sys.executable).with_name("stigmer-operator")
AGENTS = 6  # agent-N lives in org-(N % 3), namespace org-(N % 3)


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Running:
    path: Path
    holder: Holder


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} missing: pip install -e .[dev]"
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(result: Result, code: ExitCode) -> None:
    assert result.code == code, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A store held read-write by another process for the whole module."""
    path = tmp_path_factory.mktemp("cli") / "store"
    with holding(path, AGENTS) as holder:
        yield Running(path, holder)


# -- against a running writer --------------------------------------------------------


def test_get_by_namespace_and_name_renders_camel_case(running: Running) -> None:
    result = cli("store", "get", "agent", "org-1/agent-1", "--path", str(running.path))

    assert result.code == ExitCode.OK, result
    document = result.json()
    assert document["metadata"]["id"] == "agt-0001"
    assert document["spec"]["displayName"] == "Agent 1"
    assert document["spec"]["mcpServers"][0]["stdio"]["envPlaceholders"] == {
        "GITHUB_TOKEN": "${GITHUB_TOKEN}"
    }


def test_get_by_id_with_a_short_kind_name(running: Running) -> None:
    result = cli("store", "get", "ag", "agt-0002", "--path", str(running.path))

    assert result.json()["metadata"]["name"] == "agent-2"


def test_list_by_org(running: Running) -> None:
    result = cli(
        "store", "list", "agents", "--org", "org-1", "-o", "json", "--path", str(running.path)
    )

    assert [a["metadata"]["id"] for a in result.json()] == ["agt-0001", "agt-0004"]


def test_list_of_a_kind_with_nothing_stored_is_empty(running: Running) -> None:
    result = cli("store", "list", "agi", "-o", "json", "--path", str(running.path))

    assert (result.code, result.json()) == (ExitCode.OK, [])


def test_history_as_yaml(running: Running) -> None:
    result = cli("store", "history", "AgentInstance", "org-0/nope", "--path", str(running.path))
    assert_one_line_error(result, ExitCode.NOT_FOUND)

    result = cli(
        "store", "history", "agent", "org-0/agent-3", "-o", "yaml", "--path", str(running.path)
    )

    (entry,) = yaml.safe_load(result.stdout)
    assert (entry["version"], entry["change"]) == ("1", "CHANGE_TYPE_CREATED")
    assert entry["agent"]["metadata"]["id"] == "agt-0003"


def test_log_since(running: Running) -> None:
    result = cli("store", "log", "--since", "4", "--format", "json", "--path", str(running.path))

    sequences = [int(entry["sequence"]) for entry in result.json()]
    assert sequences[:2] == [5, 6]


def test_writes_made_after_the_writer_started_are_visible(running: Running) -> None:
    running.holder.save(50)

    result = cli("store", "get", "agent", "org-2/agent-50", "--path", str(running.path))

    assert result.json()["metadata"]["id"] == "agt-0050"


def test_stats_and_dump_use_the_environment_path(running: Running) -> None:
    env = {"STIGMER_STORE_PATH": str(running.path)}

    stats = cli("store", "stats", env=env).json()
    dump = yaml.safe_load(cli("store", "dump", "--format", "yaml", env=env).stdout)

    assert stats["agents"] >= AGENTS
    assert stats["bytesOnDisk"] > 0
    assert list(dump) == ["agents", "agentInstances", "ownership", "history", "changes", "stats"]
    assert len(dump["agents"]) == stats["agents"]
    assert len(dump["changes"]) == stats["changeLogEntries"]


def test_not_found_exits_1(running: Running) -> None:
    result = cli("store", "get", "agent", "org-0/nobody", "--path", str(running.path))

    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "org-0/nobody" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("store", "get", "deployments", "ns/name"),
        ("store", "get", "agent", "a/b/c"),
        ("store", "log", "--since", "-3"),
        ("store", "list"),
        ("store",),
    ],
)
def test_usage_errors_exit_2(running: Running, args: tuple[str, ...]) -> None:
    result = cli(*args, "--path", str(running.path))

    assert_one_line_error(result, ExitCode.USAGE)


# -- stores in a particular state ----------------------------------------------------


def test_a_missing_store_exits_3(tmp_path: Path) -> None:
    result = cli("store", "stats", "--path", str(tmp_path / "absent"))

    assert_one_line_error(result, ExitCode.CANNOT_OPEN)
    assert str(tmp_path / "absent") in result.stderr


def test_a_foreign_database_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = rocksdict.Rdict(str(tmp_path), rocksdict.Options(raw_mode=True))
    db[b"other"] = b"data"
    db.close()

    assert main(["store", "stats", "--path", str(tmp_path)]) == ExitCode.CANNOT_OPEN

    assert "not a stigmer-operator store" in capsys.readouterr().err


def test_history_finds_a_deleted_resource_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RocksStore.open(tmp_path / "store", create=True) as store:
        store.save(agent(1, namespace="team", name="gone", generation=1))
        store.save(agent(1, namespace="team", name="gone", generation=2))
        store.delete(Kind.AGENT, "agt-0001")

    code = main(
        ["store", "history", "agent", "team/gone", "-o", "json", "--path", str(tmp_path / "store")]
    )

    assert code == ExitCode.OK
    assert [entry["version"] for entry in json.loads(capsys.readouterr().out)] == ["2", "1"]


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "--help"]) == ExitCode.OK
    assert "history" in capsys.readouterr().out


# -- tables, diffs and manifests -------------------------------------------------------


def test_list_history_and_log_print_tables_by_default(running: Running) -> None:
    listed = cli("store", "list", "agents", "--org", "org-1", "--path", str(running.path))
    history = cli("store", "history", "agent", "org-0/agent-3", "--path", str(running.path))
    log = cli("store", "log", "--path", str(running.path))

    assert listed.stdout.splitlines() == [
        "NAMESPACE   NAME      ID         ORG     GENERATION",
        "org-1       agent-1   agt-0001   org-1   1",
        "org-1       agent-4   agt-0004   org-1   1",
    ]
    header, row = history.stdout.splitlines()
    assert header.split() == ["VERSION", "GENERATION", "CHANGE", "RECORDED", "SPEC-HASH"]
    assert row.split()[:3] == ["1", "1", "created"]
    first = log.stdout.splitlines()[1].split()
    assert (first[0], first[2], first[3], first[4], first[5]) == (
        "1", "created", "Agent", "org-0", "agent-0",
    )  # fmt: skip


def _edited(path: Path) -> None:
    with RocksStore.open(path, create=True) as store:
        store.save(agent(7, namespace="team", name="helper", generation=1))
        store.save(agent(7, namespace="team", name="helper", generation=2,
                         instructions="Answer questions about invoices, politely."))  # fmt: skip


def test_diff_shows_what_changed_between_two_versions(tmp_path: Path) -> None:
    _edited(tmp_path / "store")

    result = cli(
        "store", "diff", "agent", "team/helper", "1", "2", "--path", str(tmp_path / "store")
    )
    same = cli("store", "diff", "agent", "team/helper", "2", "2", "--path", str(tmp_path / "store"))

    assert result.code == ExitCode.OK, result
    assert result.stdout.startswith("--- version 1\n+++ version 2\n")
    changed = [line for line in result.stdout.splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-  instructions: Answer questions about the billing system.",
        "+  instructions: Answer questions about invoices, politely.",
    ]
    assert (same.code, same.stdout) == (ExitCode.OK, "")


def test_get_version_prints_a_manifest_that_applies_as_the_old_spec(tmp_path: Path) -> None:
    _edited(tmp_path / "store")

    result = cli(
        "store", "get", "agent", "team/helper", "--version", "1", "-o", "yaml",
        "--path", str(tmp_path / "store"),
    )  # fmt: skip

    assert result.code == ExitCode.OK, result
    manifest = yaml.safe_load(result.stdout)
    assert list(manifest) == ["apiVersion", "kind", "metadata", "spec"]
    assert manifest["apiVersion"] == API_VERSION
    assert (manifest["kind"], manifest["metadata"]) == (
        "Agent", {"name": "helper", "namespace": "team"},
    )  # fmt: skip
    version_1 = convert.spec_from_proto(agent(7, namespace="team", name="helper").spec)
    assert validate_spec(Kind.AGENT, manifest["spec"]) == version_1


def test_get_a_version_retention_dropped_exits_1(tmp_path: Path) -> None:
    _edited(tmp_path / "store")

    result = cli(
        "store", "get", "agent", "team/helper", "--version", "9", "--path",
        str(tmp_path / "store"),
    )  # fmt: skip

    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "no version 9" in result.stderr
