"""What CloudWatch Logs does with a function's EMF log lines in AWS, done locally: each
embedded-metric-format document becomes CloudWatch ``PutMetricData`` to the local CloudWatch
(``moto_server`` serves it beside S3), so that the metrics the functions print exist there as
they would in AWS, and the monitor function can read them back with ``GetMetricData``.

The runners (``local.function``: ``make invoke``, ``make local-api``, the demo) forward the lines
they capture when ``AWS_ENDPOINT_URL_CLOUDWATCH`` is set (``make s3-local`` prints it); without
it nothing is forwarded and the runners behave as before. The format:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_CLOUDWATCH"
MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit of metrics per request


def is_emf(line: bytes | str) -> bool:
    """Cheap test of a log line: a JSON object with an ``_aws`` member (parsed only then)."""
    marker = b'"_aws"' if isinstance(line, bytes) else '"_aws"'
    return marker in line and line.lstrip()[:1] in (b"{", "{")


def metric_data(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One EMF document -> {namespace: [PutMetricData MetricDatum, ...]}: one datum per metric
    and dimension set, its values (a number or a list, as EMF allows) as Values and Counts.
    A ValueError for a document that is not EMF."""
    try:
        meta = document["_aws"]
        timestamp = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
        directives = meta["CloudWatchMetrics"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an EMF document: {exc!r}") from None
    out: dict[str, list[dict[str, Any]]] = {}
    for directive in directives:
        namespace = directive["Namespace"]
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": k, "Value": str(document[k])} for k in dimension_set]
            for metric in directive["Metrics"]:
                raw = document.get(metric["Name"])
                values = raw if isinstance(raw, list) else [raw]
                values = [float(v) for v in values if isinstance(v, int | float)]
                if not values:
                    continue
                counts = collections.Counter(values)
                out.setdefault(namespace, []).append(
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Timestamp": timestamp,
                        "Unit": metric.get("Unit") or "None",
                        "Values": list(counts),
                        "Counts": [float(c) for c in counts.values()],
                    }
                )
    return out


class EmfForwarder:
    """Takes each captured log line (``add``, or calling it): EMF lines are kept, anything else
    is ignored; ``flush`` sends what was kept to CloudWatch (PutMetricData, one call per
    namespace and 1000 data points; the runners flush at the end of each invocation).
    Thread-safe (one boto3 client for every environment); a failure is reported once on
    stderr and never stops the runner."""

    def __init__(self, client: Any = None):
        self._client = client
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._warned = False
        self.forwarded = 0  # data points sent

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> EmfForwarder | None:
        """A forwarder when the local CloudWatch's endpoint is set, else None."""
        environ = os.environ if environ is None else environ
        return cls() if environ.get(ENDPOINT_VARIABLE) else None

    def _cloudwatch(self) -> Any:
        if self._client is None:
            import boto3  # the standard AWS settings: AWS_ENDPOINT_URL_CLOUDWATCH, region

            self._client = boto3.client("cloudwatch")
        return self._client

    def add(self, line: bytes | str) -> None:
        if not is_emf(line):
            return
        try:
            batches = metric_data(json.loads(line))
        except ValueError as exc:  # not JSON, or JSON that is not EMF
            self._warn(exc)
            return
        with self._lock:
            for namespace, datums in batches.items():
                self._pending.setdefault(namespace, []).extend(datums)

    __call__ = add

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            try:
                for namespace, datums in pending.items():
                    for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
                        chunk = datums[start : start + MAX_DATUMS_PER_CALL]
                        self._cloudwatch().put_metric_data(Namespace=namespace, MetricData=chunk)
                        self.forwarded += len(chunk)
            except Exception as exc:  # an unreachable endpoint: say so once, go on
                self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            print(
                "warning: EMF metrics could not be forwarded to the local CloudWatch "
                f"({ENDPOINT_VARIABLE}={os.environ.get(ENDPOINT_VARIABLE)}): "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
                flush=True,
            )
