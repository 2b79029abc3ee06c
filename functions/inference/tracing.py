"""The one seam for tracing, chosen by TRACING_MODE (template parameter TracingMode):

- ``lambda`` (the default): the traces are Lambda's own segments (``Tracing: Active``: the
  invocation, its init and overhead), and nothing runs in the function for them: no tracing SDK
  is imported and the request path does no tracing work.
- ``xray-sdk``: Powertools' Tracer (the X-Ray SDK for Python) on top: a subsegment around the
  handler (cold start and service annotations), one per model load step and one per interpreter
  invoke, and a ``model_version`` annotation. Each subsegment is sent over UDP to the X-Ray
  daemon as it closes.
- ``otel``: AWS's distribution of OpenTelemetry, as its Lambda layer runs it (the template adds
  the layer, OtelLayerArn, and ``AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument``): the layer's
  wrapper sets up the SDK and wraps the handler in a span of its own before this module runs;
  here a span per model load step and per interpreter invoke (children of the handler's), and
  ``model_version`` as an attribute listed in ``aws.xray.annotations`` (X-Ray's annotation).
  Spans go to X-Ray through the Lambda's X-Ray daemon (OTLP over UDP), no collector.
- ``off``: no traces (``Tracing: PassThrough``), nothing in the function either.

Measured side by side (bench/README.md and docs/monitoring.md, "Tracing"): the X-Ray SDK costs about 70 ms of
every cold start (its import, and patching botocore and the HTTP libraries) and about a quarter
of a batch-1 request. The X-Ray SDK is in maintenance mode (since 2026-02-25, support ends
2027-02-25); AWS recommends OpenTelemetry. The call sites (span, annotate, handler) are the
same for every mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

LAMBDA, XRAY_SDK, OTEL, OFF = "lambda", "xray-sdk", "otel", "off"
MODES = (LAMBDA, XRAY_SDK, OTEL, OFF)
# The span attribute X-Ray turns the attributes it lists into annotations (searchable) by.
XRAY_ANNOTATIONS = "aws.xray.annotations"


class Tracing:
    """Tracing that the function does itself: none (modes lambda and off)."""

    def __init__(self, mode: str):
        self.mode = mode

    def span(self, name: str) -> contextlib.AbstractContextManager:
        """A context manager around one step (a subsegment where the SDK runs)."""
        return contextlib.nullcontext()

    def annotate(self, key: str, value: Any) -> None:
        """A searchable key/value on the current trace (where the SDK runs)."""

    def handler(self, function: Callable) -> Callable:
        """`function` (event, context) as the handler runs it: traced where the SDK runs."""
        return function


class XRaySdkTracing(Tracing):
    """Powertools' Tracer: the X-Ray SDK, imported and set up only in this mode."""

    def __init__(self, tracer: Any = None):
        super().__init__(XRAY_SDK)
        if tracer is None:
            from aws_lambda_powertools import Tracer  # the X-Ray SDK: only in this mode

            tracer = Tracer()  # disabled outside Lambda and with POWERTOOLS_TRACE_DISABLED=true
        self.tracer = tracer
        self._handlers: dict[Callable, Callable] = {}

    def span(self, name: str) -> contextlib.AbstractContextManager:
        return self.tracer.provider.in_subsegment(name)

    def annotate(self, key: str, value: Any) -> None:
        self.tracer.put_annotation(key=key, value=value)

    def handler(self, function: Callable) -> Callable:
        traced = self._handlers.get(function)
        if traced is None:
            # capture_response=False: the response (every prediction) is not copied into the
            # trace; at 256 instances it is ~50 KB of JSON, near X-Ray's 64 KB segment limit.
            traced = self._handlers[function] = self.tracer.capture_lambda_handler(
                function, capture_response=False
            )
        return traced


class OtelTracing(Tracing):
    """OpenTelemetry's API over the tracer provider the layer's wrapper set up (without one, the
    API's no-op tracer: spans cost next to nothing and go nowhere). Imported only in this mode."""

    def __init__(self, tracer: Any = None):
        super().__init__(OTEL)
        try:
            from opentelemetry import trace  # the layer's (AWS's distribution of OpenTelemetry)
        except ImportError:
            raise RuntimeError(
                "TracingMode otel needs AWS's OpenTelemetry layer for Python (template "
                "parameter OtelLayerArn); its opentelemetry package is not on the path"
            ) from None

        self._current_span = trace.get_current_span
        self.tracer = tracer if tracer is not None else trace.get_tracer("serverless-ml.inference")

    def span(self, name: str) -> contextlib.AbstractContextManager:
        return self.tracer.start_as_current_span(name)

    def annotate(self, key: str, value: Any) -> None:
        span = self._current_span()
        span.set_attribute(key, value)
        span.set_attribute(XRAY_ANNOTATIONS, [key])


def create(mode: str) -> Tracing:
    """The tracing of `mode` (one of MODES; config.load_tracing_mode checks it)."""
    if mode == XRAY_SDK:
        return XRaySdkTracing()
    if mode == OTEL:
        return OtelTracing()
    if mode in (LAMBDA, OFF):
        return Tracing(mode)
    raise ValueError(f"tracing mode {mode!r}: one of {', '.join(MODES)}")
