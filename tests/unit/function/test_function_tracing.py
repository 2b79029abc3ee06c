"""TracingMode otel: the spans and the annotation the function makes with OpenTelemetry's API,
recorded by OpenTelemetry's own SDK in memory (the versions AWS's Lambda layer bundles). The
layer's wrapper makes the handler's span; here a span stands in for it."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracing
from tests.function_support import invoke


@pytest.fixture
def recorded(monkeypatch):
    """app's tracing in otel mode over an in-memory exporter; yields (tracer, exporter)."""
    import app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(app, "get_tracing", lambda: tracing.OtelTracing(tracer))
    return tracer, exporter


def test_otel_mode_gives_the_load_and_invoke_spans_and_the_model_version(
    recorded, serve, fake_s3, load_event, manifest
):
    tracer, exporter = recorded
    serve(fake_s3)
    with tracer.start_as_current_span("handler") as handler:  # the layer wrapper's span
        result = invoke(load_event("predict-instances.json"))
    assert result.status == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"## download", "## verify", "## load", "## invoke", "handler"} <= set(spans)
    for name in ("## download", "## verify", "## load", "## invoke"):
        assert spans[name].parent.span_id == handler.get_span_context().span_id, name
    attributes = spans["handler"].attributes
    assert attributes["model_version"] == manifest["version"]
    assert list(attributes[tracing.XRAY_ANNOTATIONS]) == ["model_version"]
    # a second request loads nothing: one more invoke span, no load spans
    exporter.clear()
    with tracer.start_as_current_span("handler"):
        assert invoke(load_event("predict-instances.json")).status == 200
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["## invoke", "handler"]


def test_otel_mode_without_the_layers_sdk_records_nothing_and_answers(serve, fake_s3, load_event):
    """Without a tracer provider (the layer missing), OpenTelemetry's API is a no-op: the
    function answers as in mode lambda."""
    import app

    mode = tracing.create(tracing.OTEL)
    assert isinstance(mode, tracing.OtelTracing)
    app_tracing = app.get_tracing
    try:
        app.get_tracing = lambda: mode
        serve(fake_s3)
        assert invoke(load_event("predict-instances.json")).status == 200
    finally:
        app.get_tracing = app_tracing
