"""A real S3-protocol server (moto_server) on a free loopback port, started and stopped by us."""

from __future__ import annotations

import os

from bench.common import FAKE_CREDENTIALS
from local.processes import free_port, wait_for_port  # noqa: F401 - for bench.localapi
from local.s3 import moto_server  # noqa: F401 - the bench's S3 server


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard AWS settings that point boto3 at the loopback S3 (nothing else changes)."""
    return {"AWS_ENDPOINT_URL_S3": endpoint, **FAKE_CREDENTIALS}


def apply_environment(endpoint: str) -> None:
    os.environ.update(s3_environment(endpoint))
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)
