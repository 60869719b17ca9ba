"""Fixtures for the instrumentation tests: a fresh registry (and its Metrics) per test."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.metrics import Metrics


@pytest.fixture
def registry() -> CollectorRegistry:
    # auto_describe like instrumentation.metrics.default_registry(), so duplicates are caught.
    return CollectorRegistry(auto_describe=True)


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics.for_registry(registry)
