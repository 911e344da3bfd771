"""What every part of the reconcile bench shares: API paths, namespaces, the Agent, statistics."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stigmer_testing.fixtures import realistic_agent

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "agentic.stigmer.ai", "v1"
API = f"/apis/{GROUP}/{VERSION}"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
FIELD_MANAGER = "reconcile-bench"

#: Namespaces the operator watches, one per phase, and the one it does not.
NS_BURST, NS_STEADY, NS_SCALE, NS_BASELINE = "rb-burst", "rb-steady", "rb-scale", "rb-baseline"
WATCHED = (NS_BURST, NS_STEADY, NS_SCALE)


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def agent_manifest(name: str) -> dict[str, Any]:
    """The shared realistic Agent, as in ``bench/pipeline_bench.py``."""
    return realistic_agent(name, f"Support {name}")


def log(message: str) -> None:
    """Progress goes to stderr; stdout is the report."""
    print(message, file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else math.nan,
        "mean": statistics.fmean(values) if values else math.nan,
    }
