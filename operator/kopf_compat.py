"""The one place that reaches into kopf's private modules.

kopf is pinned (pyproject.toml), but its ``_cogs`` package is not public API
and may change in any release. Everything the operator needs from it goes
through a function here, so a kopf upgrade breaks this module and its test
(``tests/unit/test_kopf_compat.py``) rather than code far away.
"""

from __future__ import annotations

from kopf._cogs.structs.references import NamespaceName, match_namespace


def namespace_matches(namespace: str, pattern: str) -> bool:
    """Whether kopf watches ``namespace`` for one ``--namespace`` pattern.

    The same semantics as kopf's own watching: comma-separated globs
    (``team-*``), exclusions (``!*-pr-*``; a leading exclusion implies
    ``*``), and later inclusions only re-include what an exclusion removed.
    Re-implementing them would risk the sweep deleting what kopf watches.
    """
    return match_namespace(NamespaceName(namespace), pattern)
