"""The function's configuration, read once from the environment the template sets.

Configuration flows one way: template Parameters -> Globals.Function.Environment -> here.
The metrics namespace and service name are read by Powertools itself
(POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME), never set in code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

LATEST = "latest"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str = "models"
    model_name: str = "mnist"
    model_version: str = LATEST  # "latest" or a positive integer, as text
    refresh_seconds: float = 300.0
    max_instances: int = 256
    max_body_bytes: int = 1_048_576
    cache_dir: str = "/tmp/models"

    @property
    def follows_latest(self) -> bool:
        return self.model_version == LATEST


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{name}={raw!r}: must be a positive integer")
    return int(raw)


def _non_negative_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r}: must be a number of seconds >= 0")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; a ValueError names the variable that is wrong."""
    environ = os.environ if environ is None else environ
    bucket = environ.get("MODEL_BUCKET", "").strip()
    if not bucket:
        raise ValueError("MODEL_BUCKET is not set: the S3 bucket that holds the models")
    name = environ.get("MODEL_NAME", "").strip() or "mnist"
    if not _NAME_PATTERN.match(name):
        raise ValueError(f"MODEL_NAME={name!r}: use letters, digits, '.', '_' or '-'")
    version = environ.get("MODEL_VERSION", "").strip() or LATEST
    if version != LATEST and not (version.isdigit() and int(version) > 0):
        raise ValueError(f"MODEL_VERSION={version!r}: must be 'latest' or a positive integer")
    return Settings(
        bucket=bucket,
        prefix=environ.get("MODEL_PREFIX", "models").strip().strip("/"),
        model_name=name,
        model_version=str(int(version)) if version != LATEST else LATEST,
        refresh_seconds=_non_negative_number(environ, "MODEL_REFRESH_SECONDS", 300.0),
        max_instances=_positive_int(environ, "MAX_INSTANCES", 256),
        max_body_bytes=_positive_int(environ, "MAX_BODY_BYTES", 1_048_576),
        cache_dir=environ.get("MODEL_CACHE_DIR", "").strip() or "/tmp/models",
    )
