"""The key layout: encoded keys sort like the tuples they encode.

The store's range scans are only correct if byte order equals logical
order, so these are property tests over arbitrary components, not examples.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stigmer_operator.api.kinds import Kind
from stigmer_operator.store import keys

# Any text RocksDB keys may hold: everything but NUL (the separator) and lone
# surrogates (not encodable as UTF-8).
component = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
kinds = st.sampled_from(list(Kind))
versions = st.integers(min_value=1, max_value=2**64 - 1)
sequences = st.integers(min_value=0, max_value=2**64 - 1)

PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(st.lists(st.tuples(kinds, component, component), min_size=2, max_size=20))
def test_org_index_keys_sort_like_their_tuples(rows: list[tuple[Kind, str, str]]) -> None:
    encoded = sorted(rows, key=lambda row: keys.org_index(*row))
    logical = sorted(rows, key=lambda row: (row[0].value, row[1], row[2]))
    assert encoded == logical


@PROPERTY
@given(st.lists(st.tuples(kinds, component, versions), min_size=2, max_size=20))
def test_history_keys_sort_newest_first_within_a_resource(
    rows: list[tuple[Kind, str, int]],
) -> None:
    encoded = sorted(rows, key=lambda row: keys.history(*row))
    logical = sorted(rows, key=lambda row: (row[0].value, row[1], -row[2]))
    assert encoded == logical


@PROPERTY
@given(st.lists(sequences, min_size=2, max_size=30))
def test_change_keys_sort_by_sequence(numbers: list[int]) -> None:
    assert sorted(numbers, key=keys.change) == sorted(numbers)


@PROPERTY
@given(kinds, component, component, component)
def test_a_prefix_matches_exactly_its_own_org(
    kind: Kind, org: str, other_org: str, resource_id: str
) -> None:
    key = keys.org_index(kind, other_org, resource_id)
    prefix = keys.org_prefix(kind, org)
    assert key.startswith(prefix) == (org == other_org)
    if key.startswith(prefix):
        assert prefix <= key < keys.prefix_end(prefix)


@PROPERTY
@given(kinds, component, versions, sequences)
def test_numbers_round_trip(kind: Kind, resource_id: str, version: int, sequence: int) -> None:
    assert keys.history_version(keys.history(kind, resource_id, version)) == version
    assert keys.change_sequence(keys.change(sequence)) == sequence


@PROPERTY
@given(component, component)
def test_ids_are_read_back_from_index_keys(agent_id: str, instance_id: str) -> None:
    assert keys.last_component(keys.instance_index(agent_id, instance_id)) == instance_id
    assert keys.last_component(keys.org_index(Kind.AGENT, agent_id, instance_id)) == instance_id


def test_sections_do_not_overlap() -> None:
    prefixes = [keys.section_prefix(section) for section in keys.Section]
    for prefix in prefixes:
        others = [other for other in prefixes if other != prefix]
        assert not any(other.startswith(prefix) for other in others)
    assert keys.resources_of(Kind.AGENT) != keys.resources_of(Kind.AGENT_INSTANCE)
    assert not keys.resource(Kind.AGENT_INSTANCE, "x").startswith(keys.resources_of(Kind.AGENT))


def test_meta_keys_and_marker() -> None:
    assert keys.FORMAT_KEY == b"meta\x00format"
    assert keys.FORMAT_MARKER == b"stigmer-operator/v2"
    assert keys.schema_version(keys.FORMAT_MARKER) == keys.SCHEMA_VERSION == 2
    assert keys.schema_version(b"stigmer-operator/v1") == 1
    assert keys.schema_version(b"stigmer-operator/vX") is None
    assert keys.schema_version(b"someone-else/v1") is None
    assert keys.decode_sequence_value(keys.encode_sequence_value(2**40 + 7)) == 2**40 + 7


def test_decode_is_readable() -> None:
    assert keys.decode(keys.history(Kind.AGENT, "agt-1", 3)) == ("history", "Agent", "agt-1", "3")
    assert keys.decode(keys.change(17)) == ("log", "17")
    assert keys.decode(keys.slug_index(Kind.AGENT, "acme", "helper")) == (
        "slug",
        "Agent",
        "acme",
        "helper",
    )


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
def test_unstorable_components_are_refused(bad: str) -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.org_index(Kind.AGENT, bad, "agt-1")


@pytest.mark.parametrize(("version", "sequence"), [(0, -1), (2**64, 2**64)])
def test_out_of_range_numbers_are_refused(version: int, sequence: int) -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.history(Kind.AGENT, "agt-1", version)
    with pytest.raises(keys.InvalidKeyError):
        keys.change(sequence)
