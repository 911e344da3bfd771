"""A handler memo over the unit world, with retries run by hand (``memo.retries.run_due()``)."""

from __future__ import annotations

import kubernetes
import pytest
from pipeline_world import World

from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.settings import OperatorSettings


@pytest.fixture
def memo(world: World) -> OperatorMemo:
    return OperatorMemo(
        world.deps,
        OperatorSettings(),
        kubernetes.client.ApiClient(),
        retries=Retries(autostart=False),
    )
