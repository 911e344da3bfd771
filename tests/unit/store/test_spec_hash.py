"""The spec hash depends on the spec's values only, never on how protobuf serializes them.

A hash that changed with the protobuf library would make an upgrade append
a history version (and an ``Updated`` Event) for every object, so the
definition is pinned: sha256 of a JSON text a person can write by hand.
"""

from __future__ import annotations

import hashlib

from store_factories import agent

from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.store.protocol import spec_hash


def _agent_with_spec(spec: agent_pb2.AgentSpec) -> agent_pb2.Agent:
    resource = agent_pb2.Agent()
    resource.spec.CopyFrom(spec)
    return resource


def test_the_hash_is_sha256_of_canonical_json_of_the_spec() -> None:
    spec = agent_pb2.AgentSpec(display_name="Helper", instructions="Ünïcode stays as it is.")
    spec.env.add(name="TOKEN", secret=True)

    canonical = (
        '{"display_name":"Helper","env":[{"name":"TOKEN","secret":true}],'
        '"instructions":"Ünïcode stays as it is."}'
    )
    assert spec_hash(_agent_with_spec(spec)) == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_hash_of_a_realistic_agent_is_pinned() -> None:
    # Changing this value changes every stored hash: it needs a schema migration.
    assert spec_hash(agent(1)) == PINNED_AGENT_1


def test_map_insertion_order_does_not_matter() -> None:
    first, second = agent(1), agent(1)
    for resource, names in ((first, ("A", "B", "C")), (second, ("C", "B", "A"))):
        headers = resource.spec.mcp_servers[1].http.headers
        headers.clear()
        for name in names:
            headers[name] = f"value-{name}"

    assert spec_hash(first) == spec_hash(second)


def test_metadata_and_status_do_not_count_but_every_spec_field_does() -> None:
    base = agent(1)
    relabelled = agent(1, generation=7)
    relabelled.metadata.labels["team"] = "other"
    edited = agent(1, instructions="Something else.")

    assert spec_hash(relabelled) == spec_hash(base)
    assert spec_hash(edited) != spec_hash(base)


PINNED_AGENT_1 = "0e4c38412f1545fb4075d9663972d104da431d8cea24ccd7fe286626dbca2312"
