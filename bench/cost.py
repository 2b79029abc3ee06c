"""The cost section: what a prediction costs on arm64 Lambda behind each front door, and the same
requests on SageMaker Serverless Inference, computed from this run's own durations.

PRICES is the one place of every price and the date it was read (US East, N. Virginia, on-demand,
the first pricing tier, no free tier). Durations are this machine's (an x86_64 core of the bench
host, not a Graviton core), scaled to each MemorySize the way Lambda allocates CPU: in proportion to
memory, one full vCPU at 1,769 MB. The function's request path runs on one thread, so more memory
than that adds no speed. Billed durations are rounded up to the millisecond, as Lambda bills them.
"""

from __future__ import annotations

import math

PRICES = {
    "read_on": "2026-12-06",
    "region": "us-east-1",
    "lambda_arm64_gb_second": 0.0000133334,  # first 7.5 billion GB-seconds a month
    "lambda_requests_per_million": 0.20,
    "rest_api_requests_per_million": 3.50,  # first 333 million a month
    "http_api_requests_per_million": 1.00,  # first 300 million; metered per 512 KB
    "function_url_requests_per_million": 0.0,  # no charge beyond the function's own
    # SageMaker Serverless Inference (on-demand): compute per second by memory size (1 to 6 GB),
    # and data processed, in and out
    "sagemaker_serverless_per_second": {
        1024: 0.0000200,
        2048: 0.0000400,
        3072: 0.0000600,
        4096: 0.0000800,
        5120: 0.0001000,
        6144: 0.0001200,
    },
    "sagemaker_data_processed_per_gb": 0.016,
    "sources": {
        "lambda": "https://aws.amazon.com/lambda/pricing/ (Arm price; INIT billed for on-demand "
        "functions since 2025-08-01)",
        "api_gateway": "https://aws.amazon.com/api-gateway/pricing/ (REST and HTTP APIs)",
        "function_url": "https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html "
        "(no additional charge)",
        "sagemaker": "https://aws.amazon.com/sagemaker-ai/pricing/ (Serverless Inference)",
    },
}
MEMORY_SIZES = (512, 1024, 1769, 3008)  # MB, the MemorySize values worth considering
FULL_VCPU_MB = 1769
HTTP_API_METERING_BYTES = 512 * 1024


def cpu_scale(memory_mb: int) -> float:
    """How much longer single-threaded work takes at `memory_mb` than on one full vCPU."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def billed_ms(measured_ms: float, memory_mb: int) -> int:
    """Lambda's billed duration: the scaled duration rounded up to the millisecond."""
    return math.ceil(measured_ms * cpu_scale(memory_mb))


def lambda_request_usd(duration_ms: int, memory_mb: int) -> float:
    """One invocation: its request charge and its duration in GB-seconds."""
    gb_seconds = memory_mb / 1024 * duration_ms / 1000
    return (
        PRICES["lambda_requests_per_million"] / 1e6 + gb_seconds * PRICES["lambda_arm64_gb_second"]
    )


def front_doors(request_bytes: int) -> dict[str, float]:
    """Each front door's price of one request (an HTTP API meters each 512 KB as one)."""
    units = max(1, math.ceil(request_bytes / HTTP_API_METERING_BYTES))
    return {
        "rest_api": PRICES["rest_api_requests_per_million"] / 1e6,
        "http_api": units * PRICES["http_api_requests_per_million"] / 1e6,
        "function_url": PRICES["function_url_requests_per_million"] / 1e6,
    }


def sagemaker_request_usd(duration_ms: int, memory_mb: int, data_bytes: int) -> float | None:
    """The same request on SageMaker Serverless Inference at the smallest memory size that
    holds `memory_mb` (None above 6 GB), the same duration assumed."""
    sizes = PRICES["sagemaker_serverless_per_second"]
    size = next((s for s in sorted(sizes) if s >= memory_mb), None)
    if size is None:
        return None
    compute = sizes[size] * duration_ms / 1000
    return compute + data_bytes / 1e9 * PRICES["sagemaker_data_processed_per_gb"]


def run(results: dict) -> dict:
    """The section: per MemorySize, billed durations and dollars per million predictions."""
    cold = results.get("cold_start", {}).get("variants", {}).get("ours", {})
    warm = results.get("warm", {})
    batches = warm.get("batches", {})
    measured = {
        "cold_start": cold.get("p50_ms"),
        "warm_batch1": batches.get("1", {}).get("ours", {}).get("p50_ms"),
        "warm_batch32": batches.get("32", {}).get("ours", {}).get("p50_ms"),
    }
    if any(v is None or math.isnan(v) for v in measured.values()):
        return {"computed": False, "reason": "needs the cold and warm sections of this run"}
    requests = warm.get("request_bytes", {})
    answers = warm.get("answer_bytes", {})
    rows = []
    for memory_mb in MEMORY_SIZES:
        billed = {k: billed_ms(v, memory_mb) for k, v in measured.items()}
        row = {"memory_mb": memory_mb, "billed_ms": billed, "per_million_predictions": {}}
        for batch, key in (("1", "warm_batch1"), ("32", "warm_batch32")):
            per_request = lambda_request_usd(billed[key], memory_mb)
            doors = front_doors(requests.get(batch, 0))
            data = requests.get(batch, 0) + answers.get(batch, 0)
            sagemaker = sagemaker_request_usd(billed[key], memory_mb, data)
            row["per_million_predictions"][batch] = {
                "lambda_only": round(per_request * 1e6 / int(batch), 4),
                **{
                    f"lambda_{door}": round((per_request + price) * 1e6 / int(batch), 4)
                    for door, price in doors.items()
                },
                "sagemaker_serverless": None
                if sagemaker is None
                else round(sagemaker * 1e6 / int(batch), 4),
            }
        cold_usd = lambda_request_usd(billed["cold_start"], memory_mb)
        row["per_million_cold_starts"] = round(cold_usd * 1e6, 2)
        rows.append(row)
    return {
        "computed": True,
        "prices": PRICES,
        "measured_ms_this_machine": measured,
        "model": (
            "billed ms = ceil(this machine's p50 x max(1, 1769 / MemorySize)); INIT billed "
            "(cold start = process start to first answer); SageMaker: the same duration at the "
            "smallest memory size >= MemorySize, data processed = request + answer bytes"
        ),
        "rows": rows,
    }
