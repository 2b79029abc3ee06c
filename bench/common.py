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
PYTHON = sys.executable  # .venv's Python (3.11): the bench itself, training, the seed's path
# The functions' environment on the runtime's own Python (Makefile: FUNCTION_VENV, made by make
# setup): the function, floor and lean floor rows run on its interpreter (python -S, so none of
# its site-packages but what lambda_path puts on PYTHONPATH).
FUNCTION_VENV = ROOT / ".venv-function"
LAMBDA_PYTHON = str(FUNCTION_VENV / "bin" / "python")
# TracingMode otel's row: AWS's distribution of OpenTelemetry, as its Lambda layer bundles it
# (requirements-otel.txt; its protobuf pin is not ai-edge-litert's), in its own environment.
OTEL_VENV = ROOT / ".venv-otel"


def python_version(python: str) -> str:
    """The version of the interpreter `python` (e.g. "3.13.0"), or SystemExit saying how to
    make it."""
    import subprocess

    try:
        return subprocess.run(
            [python, "-S", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"bench: {python} does not run ({exc}); run make setup") from None


def site_packages(venv: Path) -> Path:
    """A virtual environment's site-packages folder (lib/pythonX.Y/site-packages)."""
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise SystemExit(f"bench: no {venv}; run make setup")
    return found[-1]


BUCKET = "bench-models"  # on the bench's own S3 server; given to the template as BucketName


def function_environment(shell_env: dict[str, str], **parameters: str) -> dict[str, str]:
    """The inference function's environment as `sam local` resolves it from template.yaml
    (Parameters' defaults or these, Globals, the function's own variables), the model bucket
    being the bench's; the AWS settings of `shell_env` (the loopback S3) pass through as
    sam's do."""
    from local.template import Template

    template = Template(parameter_overrides={"BucketName": BUCKET, **parameters})
    environment = template.environment(template.function("InferenceFunction"), shell_env=shell_env)
    # sam local's own marker, not Lambda's: Powertools turns the Tracer off under it
    del environment["AWS_SAM_LOCAL"]
    return environment


TRACE_ID = "Root=1-6750e8a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


def lambda_environment(function_dir: Path, daemon_port: int) -> dict[str, str]:
    """What the Lambda runtime itself adds: with LAMBDA_TASK_ROOT, Powertools' Tracer is on and
    the X-Ray SDK takes its Lambda path; `Tracing: Active` samples the request (_X_AMZN_TRACE_ID)
    and segments go over UDP to the daemon, here a loopback socket that the bench counts them on.
    An on-demand start of the API function's handler: app starts loading the model while it
    imports (config.loads_model_at_import); the otel variant names its wrapper instead."""
    return {
        "_HANDLER": "app.lambda_handler",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
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
