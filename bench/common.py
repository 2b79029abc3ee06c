"""What the bench parent's modules share: paths, the function's environment, statistics.

The child processes (bench/child.py) import none of this: they must not pay for the bench.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "functions" / "inference"
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "mnist"
PYTHON = sys.executable
BUCKET = "bench-models"  # on the bench's own S3 server; given to the template as BucketName


def function_environment(shell_env: dict[str, str]) -> dict[str, str]:
    """The inference function's environment as `sam local` resolves it from template.yaml
    (Parameters' defaults, Globals, the function's own variables), the model bucket being the
    bench's; the AWS settings of `shell_env` (the loopback S3) pass through as sam's do."""
    from local.template import Template

    template = Template(parameter_overrides={"BucketName": BUCKET})
    environment = template.environment(template.function("InferenceFunction"), shell_env=shell_env)
    # sam local's own marker, not Lambda's: Powertools turns the Tracer off under it
    del environment["AWS_SAM_LOCAL"]
    return environment


TRACE_ID = "Root=1-6750e8a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


def lambda_environment(function_dir: Path, daemon_port: int) -> dict[str, str]:
    """What the Lambda runtime itself adds: with LAMBDA_TASK_ROOT, Powertools' Tracer is on and
    the X-Ray SDK takes its Lambda path; `Tracing: Active` samples the request (_X_AMZN_TRACE_ID)
    and segments go over UDP to the daemon, here a loopback socket that the bench counts them on."""
    return {
        "LAMBDA_TASK_ROOT": str(function_dir),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_X_AMZN_TRACE_ID": TRACE_ID,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon_port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


SUMMARY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "min_ms", "mean_ms")


def summary_ms(values, scale: float = 1e-6) -> dict[str, float]:
    """n, p50/p90/p99 (numpy's linear interpolation), min and mean in ms (of ns by default)."""
    v = np.asarray(values, dtype=float) * scale
    if not v.size:
        return {"n": 0, **dict.fromkeys(SUMMARY_KEYS, math.nan)}
    figures = (*np.percentile(v, [50, 90, 99]), v.min(), v.mean())
    return {
        "n": int(v.size),
        **{k: round(float(x), 4) for k, x in zip(SUMMARY_KEYS, figures, strict=True)},
    }


def ratio(numerator: float, denominator: float, digits: int = 3) -> float:
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return round(numerator / denominator, digits)


def rotations(names: list, rounds: int):
    """Each round's order: every name once, the start rotating, so that all see the same noise."""
    for number in range(rounds):
        shift = number % len(names)
        yield number, names[shift:] + names[:shift]
