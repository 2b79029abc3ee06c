"""python -m local.s3: a real S3 server on the given loopback port, the bucket versioned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local import processes
from tests.local_support import ROOT, free_port, no_leftovers

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Whatever the test started, directly or not, has stopped when it ends."""
    with no_leftovers():
        yield


def test_serves_s3_with_the_bucket_and_stops_cleanly(tmp_path):
    import boto3

    port = free_port()
    log = tmp_path / "s3.log"
    process = processes.start(
        [
            sys.executable,
            "-m",
            "local.s3",
            "--port",
            str(port),
            "--bucket",
            "models-a",
            "--bucket",
            "models-b",
        ],
        log=log,
        env=dict(os.environ),
        cwd=ROOT,
    )
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        processes.wait_until(lambda: "Ready." in log.read_text(), 30, process, "local.s3")
        for bucket in ("models-a", "models-b"):
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
            # as the stack creates it: with Object Lock, so that publish locks each version
            lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            assert lock["ObjectLockEnabled"] == "Enabled"
        s3.put_object(Bucket="models-a", Key="k", Body=b"v1")
        s3.put_object(Bucket="models-a", Key="k", Body=b"v2")
        versions = s3.list_object_versions(Bucket="models-a", Prefix="k")["Versions"]
        assert len(versions) == 2
        assert f"export AWS_ENDPOINT_URL_S3=http://127.0.0.1:{port}" in log.read_text()

        busy = subprocess.run(
            [sys.executable, "-m", "local.s3", "--port", str(port), "--bucket", "b"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert busy.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    finally:
        code = processes.stop(process)
    assert code == 0
    assert processes.port_free(port)
