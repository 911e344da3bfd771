"""Step 3, ResolveSlug."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_world import World, agent_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.deps import PipelineSettings
from stigmer_operator.pipeline.keys import SLUG
from stigmer_operator.pipeline.naming import is_dns_label

STEP = "ResolveSlug"


def slug_of(world: World, name: str = "support-bot", **spec: Any) -> str:
    world.apply(agent_manifest(name, **spec))
    ctx = world.run_until(STEP, Kind.AGENT, name)
    step_of(Kind.AGENT, STEP).run(ctx)
    return ctx.values.get(SLUG)


@pytest.mark.parametrize(
    ("display_name", "slug"),
    [
        ("Customer Support Bot", "customer-support-bot"),
        ("Café Concierge", "cafe-concierge"),
        ("🤖 Robo 🚀", "robo"),
    ],
)
def test_slug_comes_from_the_display_name(world: World, display_name: str, slug: str) -> None:
    assert slug_of(world, displayName=display_name) == slug


def test_without_display_name_the_slug_comes_from_the_name(world: World) -> None:
    assert slug_of(world, "my.agent-v2") == "my-agent-v2"


def test_all_emoji_display_name_falls_back_to_the_name(world: World) -> None:
    assert slug_of(world, "emoji-agent", displayName="🤖🚀✨") == "emoji-agent"


def test_slug_is_bounded_valid_and_deterministic(world: World) -> None:
    long = "A very long display name " * 9
    first = slug_of(world, displayName=long)
    assert is_dns_label(first) and len(first) <= 63
    assert slug_of(world, displayName=long) == first


def test_slug_length_setting_is_honoured(world: World) -> None:
    world.settings = PipelineSettings(max_slug_length=12)
    world.restart()
    slug = slug_of(world, displayName="Customer Support Bot")
    assert len(slug) <= 12 and is_dns_label(slug)


def test_slug_length_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="max_slug_length"):
        PipelineSettings(max_slug_length=64)
