"""The generated CRDs: in sync with the models, structural, and carrying the
apply-time rules (CEL) they promise.

The structural checker below encodes the apiextensions.k8s.io/v1 rules a
kube-apiserver enforces when the CRD is created, so a bad schema fails here
in milliseconds instead of in an integration run.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from stigmer_operator.api import crdgen
from stigmer_operator.api.kinds import GROUP, VERSION, Kind

CRDS = Path(__file__).resolve().parents[3] / "crds"

#: Keywords a node of the generated schemas may use.
ALLOWED_KEYWORDS = {
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}


def _load(kind: Kind) -> dict[str, Any]:
    text = (CRDS / crdgen.crd_filename(kind)).read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def _version(kind: Kind) -> dict[str, Any]:
    (version,) = _load(kind)["spec"]["versions"]
    return dict(version)


def _root(kind: Kind) -> dict[str, Any]:
    return dict(_version(kind)["schema"]["openAPIV3Schema"])


def _node(kind: Kind, path: str) -> dict[str, Any]:
    """Schema node at ``spec.mcpServers[].http.url`` style paths."""
    node = _root(kind)
    for part in path.split("."):
        name, items = (part[:-2], True) if part.endswith("[]") else (part, False)
        node = node["properties"][name]
        if items:
            node = node["items"]
    return node


def _walk(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _rules(node: Mapping[str, Any]) -> dict[str, str]:
    return {rule["rule"]: rule["message"] for rule in node.get("x-kubernetes-validations", [])}


# --------------------------------------------------------------------------
# Drift and the command line
# --------------------------------------------------------------------------


def test_checked_in_crds_match_the_models() -> None:
    rendered = crdgen.render_crds()

    assert sorted(rendered) == sorted(p.name for p in CRDS.glob("*.yaml"))
    for name, text in rendered.items():
        assert (CRDS / name).read_text(encoding="utf-8") == text, (
            f"crds/{name} drifted; run `python -m stigmer_operator.api.crdgen`"
        )


def test_generate_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 0
    assert "match the models" in capsys.readouterr().out


def test_check_fails_with_a_diff_when_a_file_drifted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crdgen.main(["--out", str(tmp_path)])
    path = tmp_path / crdgen.crd_filename(Kind.AGENT)
    path.write_text(path.read_text().replace("maxItems: 32", "maxItems: 33"))

    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    removed = [line for line in err.splitlines() if line.startswith("-") and "maxItems: 33" in line]
    added = [line for line in err.splitlines() if line.startswith("+") and "maxItems: 32" in line]
    assert removed and added
    assert "1 CRD file(s)" in err
    assert "python -m stigmer_operator.api.crdgen" in err


def test_check_reports_a_missing_file(tmp_path: Path) -> None:
    drifts = crdgen.check(tmp_path)

    assert len(drifts) == len(Kind)


@pytest.mark.parametrize("command", ["generate", "check"])
def test_register_adds_the_crds_subcommand(tmp_path: Path, command: str) -> None:
    parser = argparse.ArgumentParser(prog="stigmer-operator")
    crdgen.register(parser.add_subparsers(dest="command", required=True))
    crdgen.main(["--out", str(tmp_path)])

    args = parser.parse_args(["crds", command, "--out", str(tmp_path)])

    assert args.func(args) == 0


# --------------------------------------------------------------------------
# A valid apiextensions.k8s.io/v1 CRD
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_crd_identity_names_and_version(kind: Kind) -> None:
    crd = _load(kind)
    version = _version(kind)

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.{GROUP}"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind.value,
        "listKind": f"{kind.value}List",
        "plural": kind.plural,
        "singular": kind.value.lower(),
        "shortNames": [kind.short_name],
        "categories": ["stigmer"],
    }
    assert version["name"] == VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_short_names() -> None:
    assert _load(Kind.AGENT)["spec"]["names"]["shortNames"] == ["ag"]
    assert _load(Kind.AGENT_INSTANCE)["spec"]["names"]["shortNames"] == ["agi"]


def test_agent_printer_columns() -> None:
    columns = {c["name"]: c for c in _version(Kind.AGENT)["additionalPrinterColumns"]}

    assert list(columns) == ["Ready", "Default Instance", "Scope", "Age"]
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Default Instance"]["jsonPath"] == ".status.defaultInstanceName"
    assert columns["Scope"]["jsonPath"] == ".spec.scope"
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_agent_instance_printer_columns() -> None:
    columns = {c["name"]: c for c in _version(Kind.AGENT_INSTANCE)["additionalPrinterColumns"]}

    assert list(columns) == ["Agent", "Ready", "Age"]
    assert columns["Agent"]["jsonPath"] == ".spec.agentRef.name"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'


@pytest.mark.parametrize("kind", list(Kind))
def test_schema_is_structural(kind: Kind) -> None:
    root = _root(kind)
    problems = []
    for path, node in _walk(root, kind.value):
        unknown = set(node) - ALLOWED_KEYWORDS
        if unknown:
            problems.append(f"{path}: keywords {sorted(unknown)} are not allowed")
        if "type" not in node:
            problems.append(f"{path}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties together")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{path}: array without items")
        if node.get("type") == "object" and "properties" in node:
            missing = set(node.get("required", [])) - set(node["properties"])
            if missing:
                problems.append(f"{path}: required names unknown properties {sorted(missing)}")
    assert problems == []


@pytest.mark.parametrize("kind", list(Kind))
def test_no_preserve_unknown_fields_anywhere(kind: Kind) -> None:
    text = (CRDS / crdgen.crd_filename(kind)).read_text()

    assert "x-kubernetes-preserve-unknown-fields" not in text
    assert "$ref" not in text and "anyOf" not in text and "oneOf" not in text


@pytest.mark.parametrize("kind", list(Kind))
def test_every_property_has_a_description(kind: Kind) -> None:
    root = _root(kind)
    undocumented = [
        path
        for path, node in _walk(root, kind.value)
        if not node.get("description") and path != f"{kind.value}.metadata" and _is_property(path)
    ]

    assert root["description"].startswith(f"{kind.value} is ")
    assert undocumented == []


def _is_property(path: str) -> bool:
    return not path.endswith(("[]", "{}"))


@pytest.mark.parametrize("kind", list(Kind))
def test_every_string_and_list_is_bounded_for_cel_cost(kind: Kind) -> None:
    unbounded = []
    for path, node in _walk(_root(kind), kind.value):
        if path.endswith((".apiVersion", ".kind")) and path.count(".") == 1:
            continue
        kind_of = node.get("type")
        if kind_of == "string" and not ({"maxLength", "enum"} & set(node) or "format" in node):
            unbounded.append(path)
        if kind_of == "array" and "maxItems" not in node:
            unbounded.append(path)
        if kind_of == "object" and "additionalProperties" in node and "maxProperties" not in node:
            unbounded.append(path)
    assert unbounded == []


@pytest.mark.parametrize("kind", list(Kind))
def test_spec_is_required_and_status_has_a_full_schema(kind: Kind) -> None:
    root = _root(kind)
    status = root["properties"]["status"]

    assert root["required"] == ["spec"]
    assert status["type"] == "object" and status["properties"]
    assert root["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (
            Kind.AGENT,
            {"observedGeneration", "id", "slug", "conditions", "defaultInstanceId"}
            | {"defaultInstanceName", "audit"},
        ),
        (
            Kind.AGENT_INSTANCE,
            {"observedGeneration", "id", "slug", "agentId", "serviceAccountName"}
            | {"conditions", "audit"},
        ),
    ],
)
def test_status_fields(kind: Kind, fields: set[str]) -> None:
    status = _node(kind, "status")

    assert set(status["properties"]) == fields
    assert status["properties"]["observedGeneration"]["format"] == "int64"
    assert set(status["properties"]["audit"]["properties"]) == {"createdAt", "updatedAt", "event"}
    assert status["properties"]["audit"]["properties"]["createdAt"]["format"] == "date-time"


@pytest.mark.parametrize("kind", list(Kind))
def test_conditions_have_the_metav1_shape(kind: Kind) -> None:
    conditions = _node(kind, "status.conditions")
    item = conditions["items"]

    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["observedGeneration"]["format"] == "int64"


@pytest.mark.parametrize("kind", list(Kind))
def test_scope_is_an_enum_defaulting_to_organization(kind: Kind) -> None:
    scope = _node(kind, "spec.scope")

    assert scope["enum"] == ["organization", "platform"]
    assert scope["default"] == "organization"


def test_zero_value_defaults_are_not_written_into_objects() -> None:
    defaults = [path for path, node in _walk(_root(Kind.AGENT), "Agent") if "default" in node]

    assert set(defaults) == {
        "Agent.spec.scope",
        "Agent.spec.mcpServers[].docker.ports[].protocol",
        "Agent.status",  # observedGeneration 0 until the operator has seen it (kstatus)
    }


@pytest.mark.parametrize("kind", list(Kind))
def test_an_unseen_object_has_a_status_behind_its_generation(kind: Kind) -> None:
    """kstatus calls an object without conditions Current; observedGeneration 0 is behind."""
    assert _root(kind)["properties"]["status"]["default"] == {"observedGeneration": 0}


# --------------------------------------------------------------------------
# CEL rules: one per constraint CEL can express, each with a message naming the field
# --------------------------------------------------------------------------

UNIQUE_NAMES = "self.all(x, self.exists_one(y, y.name == x.name))"

CEL_RULES = [
    (
        Kind.AGENT,
        "spec.mcpServers[]",
        "[has(self.stdio), has(self.http), has(self.docker)].filter(x, x).size() == 1",
        "spec.mcpServers[]: exactly one of stdio, http or docker must be set",
    ),
    (
        Kind.AGENT,
        "spec.mcpServers",
        UNIQUE_NAMES,
        "spec.mcpServers: MCP server names must be unique",
    ),
    (Kind.AGENT, "spec.subAgents", UNIQUE_NAMES, "spec.subAgents: sub-agent names must be unique"),
    (Kind.AGENT, "spec.env", UNIQUE_NAMES, "spec.env: environment variable names must be unique"),
    (
        Kind.AGENT,
        "spec.instructions",
        "self.trim().size() >= 10",
        "spec.instructions must be at least 10 characters",
    ),
    (
        Kind.AGENT,
        "spec.subAgents[].instructions",
        "self.trim().size() >= 10",
        "spec.subAgents[].instructions must be at least 10 characters",
    ),
    (
        Kind.AGENT,
        "spec.mcpServers[].http.url",
        "self.matches('^https?://[^ /?#]+([/?#].*)?$')",
        "spec.mcpServers[].http.url must be an http(s) URL with a host",
    ),
    (
        Kind.AGENT,
        "spec.iconUrl",
        "self == '' || self.matches('^https?://[^ /?#]+([/?#].*)?$')",
        "spec.iconUrl must be an http(s) URL with a host",
    ),
    (
        Kind.AGENT_INSTANCE,
        "spec.agentRef",
        "self == oldSelf",
        "spec.agentRef is immutable; create a new AgentInstance to deploy another Agent",
    ),
    (
        Kind.AGENT_INSTANCE,
        "spec.environmentRefs",
        "self.all(x, self.exists_one(y, y.kind == x.kind && y.name == x.name))",
        "spec.environmentRefs must not name the same Secret or ConfigMap twice",
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "rule", "message"), CEL_RULES, ids=[f"{r[0]}:{r[1]}" for r in CEL_RULES]
)
def test_cel_rule_present(kind: Kind, path: str, rule: str, message: str) -> None:
    assert _rules(_node(kind, path)).get(rule) == message


def test_sub_agent_references_are_checked_by_cel() -> None:
    rules = _rules(_node(Kind.AGENT, "spec"))

    messages = set(rules.values())
    assert "spec.subAgents[].mcpServers must name servers defined in spec.mcpServers" in messages
    assert (
        "spec.subAgents[].mcpToolSelections keys must name servers defined in spec.mcpServers"
        in messages
    )
    assert all("self.mcpServers.exists(m, m.name == n)" in rule for rule in rules)
    field_paths = {
        rule.get("fieldPath") for rule in _node(Kind.AGENT, "spec")["x-kubernetes-validations"]
    }
    assert field_paths == {".subAgents"}


@pytest.mark.parametrize("kind", list(Kind))
def test_every_cel_rule_has_a_message_naming_a_spec_field(kind: Kind) -> None:
    for path, node in _walk(_root(kind), kind.value):
        for rule in node.get("x-kubernetes-validations", []):
            assert {"rule", "message"} <= set(rule) <= {"rule", "message", "fieldPath"}, path
            assert rule["message"].startswith("spec."), (path, rule)


def test_set_semantics_for_scalar_lists() -> None:
    for path in ["spec.sharing", "spec.mcpServers[].enabledTools", "spec.subAgents[].mcpServers"]:
        assert _node(Kind.AGENT, path)["x-kubernetes-list-type"] == "set", path


def test_maps_are_additional_properties() -> None:
    headers = _node(Kind.AGENT, "spec.mcpServers[].http.headers")
    selections = _node(Kind.AGENT, "spec.subAgents[].mcpToolSelections")

    assert headers["additionalProperties"] == {"type": "string", "maxLength": 4096}
    assert selections["additionalProperties"]["type"] == "object"
    assert "enabledTools" in selections["additionalProperties"]["properties"]


def test_structural_conversion_refuses_unsupported_json_schema() -> None:
    from pydantic import BaseModel, Field

    class Ambiguous(BaseModel):
        value: int | str = Field(description="Either.")

    with pytest.raises(crdgen.UnsupportedSchema, match="anyOf of several types"):
        crdgen.structural_schema(Ambiguous)
