"""kopf's private namespace matching, held to what ``--namespace`` promises users."""

from __future__ import annotations

import pytest

from stigmer_operator.kopf_compat import namespace_matches


@pytest.mark.parametrize(
    ("namespace", "pattern", "watched"),
    [
        ("team-a", "team-a", True),
        ("team-b", "team-a", False),
        ("team-a", "team-*", True),
        ("platform", "team-*", False),
        ("team-pr-7", "team-*, !*-pr-*", False),
        ("team-live", "team-*, !*-pr-*", True),
        ("anything", "!*-pr-*", True),  # a leading exclusion implies "*"
        ("app-pr-7", "!*-pr-*", False),
        ("team-pr-123", "team-*, !*-pr-*, *pr-123", True),  # re-included
        ("other-pr-123", "team-*, !*-pr-*, *pr-123", False),  # never included
        ("team-a1", "team-??", True),
        ("team-a12", "team-??", False),
    ],
)
def test_namespace_patterns_mean_what_kopf_watches(
    namespace: str, pattern: str, watched: bool
) -> None:
    assert namespace_matches(namespace, pattern) is watched


def test_the_backlog_wraps_kopfs_watch_and_processor_only_while_open() -> None:
    """kopf looks both up when a watch starts: wrapped inside, its own again outside."""
    from kopf._cogs.clients import watching
    from kopf._core.reactor import processing

    from stigmer_operator.kopf_compat import parked_backlog

    watch, process = watching.infinite_watch, processing.process_resource_event
    with parked_backlog(8, "agentic.stigmer.ai"):
        assert watching.infinite_watch is not watch
        assert processing.process_resource_event is not process
    assert watching.infinite_watch is watch
    assert processing.process_resource_event is process
