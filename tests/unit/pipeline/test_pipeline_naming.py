"""Derived names and ids: valid for the API whatever the input, and deterministic."""

from __future__ import annotations

import re

import pytest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.naming import (
    bounded,
    default_instance_name,
    event_name,
    is_dns_label,
    label_value,
    resource_id,
    service_account_name,
    slugify,
)

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LONG = "a" * 120 + "." + "b" * 132  # 253 characters, a valid DNS subdomain


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Support Bot", "support-bot"),
        ("  Crème Brûlée -- Agent!! ", "creme-brulee-agent"),
        ("ÅNGSTRÖM_v2.0", "angstrom-v2-0"),
        ("\ufb01le \uff37\uff49\uff44\uff45", "file-wide"),  # NFKD: ligature, full-width
        ("🤖🚀", ""),
        ("--", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_long_slugs_are_bounded_hashed_and_distinct() -> None:
    first = slugify("x" * 100 + " one")
    second = slugify("x" * 100 + " two")
    assert len(first) <= 63 and is_dns_label(first)
    assert first != second
    assert slugify("x" * 100 + " one") == first  # deterministic
    assert len(slugify("y" * 100, 20)) <= 20 and is_dns_label(slugify("y" * 100, 20))


def test_resource_id_is_deterministic_per_uid_and_kind() -> None:
    uid = "3f1c2a9e-0000-4000-8000-000000000001"
    assert resource_id(Kind.AGENT, uid) == resource_id(Kind.AGENT, uid)
    assert re.fullmatch(r"agt-[0-9a-f]{20}", resource_id(Kind.AGENT, uid))
    assert re.fullmatch(r"ain-[0-9a-f]{20}", resource_id(Kind.AGENT_INSTANCE, uid))
    assert resource_id(Kind.AGENT, uid) != resource_id(Kind.AGENT, uid + "x")


def test_short_names_are_kept_readable() -> None:
    assert default_instance_name("support-bot") == "support-bot-default"
    assert service_account_name("prod") == "prod-agent"
    assert label_value("support-bot") == "support-bot"


@pytest.mark.parametrize("make", [default_instance_name, service_account_name])
def test_names_from_253_character_names_are_valid_and_distinct(make: object) -> None:
    assert callable(make)
    name = make(LONG)
    other = make(LONG[:-1] + "c")
    assert len(name) <= 253 and DNS_SUBDOMAIN.match(name)
    assert name != other


def test_label_values_of_long_names_are_valid() -> None:
    value = label_value(LONG)
    assert len(value) <= 63 and LABEL_VALUE.match(value)
    assert value != label_value(LONG[:-1] + "c")


def test_bounded_never_ends_in_a_separator() -> None:
    name = bounded("a" * 60 + "-." + "b" * 200, "-x", 70)
    assert len(name) <= 70 and DNS_SUBDOMAIN.match(name)


def test_event_names_are_deterministic_and_valid() -> None:
    assert event_name("agent", "id", 1) == event_name("agent", "id", 1)
    assert event_name("agent", "id", 1) != event_name("agent", "id", 2)
    name = event_name(LONG, "x")
    assert len(name) <= 253 and DNS_SUBDOMAIN.match(name)
