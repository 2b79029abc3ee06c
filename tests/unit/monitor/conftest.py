"""Fixtures for the drift monitor's unit tests: no network; the settings the template gives."""

from __future__ import annotations

import pytest

from tests.function_support import (
    METRICS_NAMESPACE,
    SERVICE_NAME,
    CurrentStdout,
    monitor_environment,
)


@pytest.fixture(autouse=True)
def fresh_monitor(monkeypatch):
    """The monitor module as a fresh execution environment would have it, configured as the
    template configures it (lag 0: the tests' metrics are 'now')."""
    import monitor

    for name, value in monitor_environment().items():
        if not name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MONITOR_LAG_SECONDS", "0")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setattr(monitor.metrics, "namespace", METRICS_NAMESPACE)
    monkeypatch.setattr(monitor.metrics, "service", SERVICE_NAME)
    monkeypatch.setattr(monitor.logger.registered_handler, "stream", CurrentStdout())
    monitor.metrics.clear_metrics()
    monitor.get_settings.cache_clear()
    yield monitor
    monitor.get_settings.cache_clear()
