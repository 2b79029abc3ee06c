"""One window of a model version's traffic, read back from the metrics the inference function
emits (functions/inference/app.py, ``_record_predictions``), per service and model version:

    Confidence          one value per prediction     -> SampleCount = predictions, Sum
    Predictions         by label, a count per request -> Sum = predictions of that label
    InputMeanIntensity  by channel, one per input     -> Sum / SampleCount = mean intensity
    BlankInputs         a count per request           -> Sum = blank inputs

``GetMetricData`` with the statistics ``Sum`` and ``SampleCount`` only (what CloudWatch and the
pinned moto both answer; every mean here is Sum / SampleCount, so data points of any period
add up exactly). One query per series, at most 500 per call (CloudWatch's limit), pages
followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drift import Observed

MAX_QUERIES = 500  # per GetMetricData call


@dataclass(frozen=True)
class Series:
    """One query: a metric of this service and version (and maybe a label or channel)."""

    id: str  # the query id: [a-z][a-zA-Z0-9_]*
    metric: str
    stat: str  # Sum or SampleCount
    extra: tuple[tuple[str, str], ...] = ()  # further dimensions


def series(labels: Sequence[str], channels: int) -> list[Series]:
    out = [
        Series("confidence_n", "Confidence", "SampleCount"),
        Series("confidence_sum", "Confidence", "Sum"),
        Series("blank_sum", "BlankInputs", "Sum"),
    ]
    out += [
        Series(f"label_{i}", "Predictions", "Sum", (("label", label),))
        for i, label in enumerate(labels)
    ]
    for c in range(channels):
        dims = (("channel", str(c)),)
        out.append(Series(f"intensity_{c}_n", "InputMeanIntensity", "SampleCount", dims))
        out.append(Series(f"intensity_{c}_sum", "InputMeanIntensity", "Sum", dims))
    return out


def queries(
    namespace: str,
    service: str,
    model: str,
    version: int,
    wanted: Sequence[Series],
    period: int,
) -> list[dict[str, Any]]:
    """GetMetricData MetricDataQueries for these series of (service, model, model_version)."""
    out = []
    for s in wanted:
        dimensions = [
            ("service", service),
            ("model", model),
            ("model_version", str(version)),
            *s.extra,
        ]
        metric = {
            "Namespace": namespace,
            "MetricName": s.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
        }
        out.append(
            {
                "Id": s.id,
                "MetricStat": {"Metric": metric, "Period": period, "Stat": s.stat},
                "ReturnData": True,
            }
        )
    return out


def read_totals(
    cloudwatch: Any, metric_queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, float]:
    """Each query's values over [start, end) added up (0 for a series with no data)."""
    totals = {q["Id"]: 0.0 for q in metric_queries}
    paginator = cloudwatch.get_paginator("get_metric_data")
    for first in range(0, len(metric_queries), MAX_QUERIES):
        chunk = metric_queries[first : first + MAX_QUERIES]
        for page in paginator.paginate(MetricDataQueries=chunk, StartTime=start, EndTime=end):
            for result in page["MetricDataResults"]:
                totals[result["Id"]] += float(sum(result.get("Values") or ()))
    return totals


def observed(totals: dict[str, float], labels: Sequence[str], channels: int) -> Observed:
    """The window's figures from the totals of `series(labels, channels)`."""
    n = int(round(totals["confidence_n"]))
    means = []
    for c in range(channels):
        count = totals[f"intensity_{c}_n"]
        means.append(totals[f"intensity_{c}_sum"] / count if count else 0.0)
    inputs = totals["intensity_0_n"] if channels else 0.0
    return Observed(
        predictions=n,
        label_counts={label: totals[f"label_{i}"] for i, label in enumerate(labels)},
        confidence_mean=totals["confidence_sum"] / n if n else 0.0,
        intensity_means=means,
        blank_share=totals["blank_sum"] / inputs if inputs else 0.0,
    )
