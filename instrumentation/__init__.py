"""C.O.M.E.T.'s instrumentation library: Prometheus metrics, timing, health and debugging aids.

It knows nothing of the bot's cogs and is never loaded as an extension. Importing the package is
cheap: the public names below are imported from their modules on first use (PEP 562), so
``import instrumentation`` pulls in neither discord.py nor aiohttp.

    from instrumentation import Metrics, monitor_performance, MetricsServer
    from instrumentation import instrument  # handle = await instrument(bot): all of it, any bot
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from instrumentation.collectors import GCCollector, ProcessCollector, register_runtime_collectors
    from instrumentation.decorators import CallRecorder, monitor_performance
    from instrumentation.install import InstrumentationHandle, instrument
    from instrumentation.logging import LogRecordCounter, RedactingFilter, setup_debug_logging
    from instrumentation.loop import LoopLagMonitor
    from instrumentation.memory import AllocationGrowth, MemoryTracker
    from instrumentation.metrics import Metrics, default_registry, error_label, gateway_event_label
    from instrumentation.redact import Scrubber, secret_variants
    from instrumentation.response_time import ResponseTimeMonitor
    from instrumentation.server import MetricsServer, PortInUseError

#: public name -> module that defines it
_EXPORTS = {
    "Metrics": "metrics",
    "default_registry": "metrics",
    "error_label": "metrics",
    "gateway_event_label": "metrics",
    "monitor_performance": "decorators",
    "CallRecorder": "decorators",
    "ProcessCollector": "collectors",
    "GCCollector": "collectors",
    "register_runtime_collectors": "collectors",
    "ResponseTimeMonitor": "response_time",
    "MemoryTracker": "memory",
    "AllocationGrowth": "memory",
    "LoopLagMonitor": "loop",
    "Scrubber": "redact",
    "secret_variants": "redact",
    "setup_debug_logging": "logging",
    "RedactingFilter": "logging",
    "LogRecordCounter": "logging",
    "MetricsServer": "server",
    "PortInUseError": "server",
    "instrument": "install",
    "InstrumentationHandle": "install",
}

__all__ = [
    "AllocationGrowth",
    "CallRecorder",
    "GCCollector",
    "InstrumentationHandle",
    "LogRecordCounter",
    "LoopLagMonitor",
    "MemoryTracker",
    "Metrics",
    "MetricsServer",
    "PortInUseError",
    "ProcessCollector",
    "RedactingFilter",
    "ResponseTimeMonitor",
    "Scrubber",
    "default_registry",
    "error_label",
    "gateway_event_label",
    "instrument",
    "monitor_performance",
    "register_runtime_collectors",
    "secret_variants",
    "setup_debug_logging",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'instrumentation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"instrumentation.{module_name}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
