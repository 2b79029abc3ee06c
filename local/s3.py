"""``python -m local.s3 --port 4566 --bucket NAME``: a real S3-protocol server on 127.0.0.1
(moto's ``ThreadedMotoServer``), the bucket created as the stack creates it (versioning, Object
Lock), running until Ctrl-C. Everything else reaches it through the standard
``AWS_ENDPOINT_URL_S3`` setting, whose exports it prints. The same server is the local
CloudWatch (``PutMetricData``, ``GetMetricData``), exported as ``AWS_ENDPOINT_URL_CLOUDWATCH``:
the local runners forward the functions' EMF metrics to it (``local.cloudwatch``) and the
monitor function reads them there. ``make s3-local`` passes the Makefile's BUCKET, the one
default name of the local registry bucket.

The state lives in this process's memory: stopping the server forgets every object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from local import processes

DEFAULT_PORT = 4566
REGION = "us-east-1"
# moto accepts any credentials; these say plainly that they are not real ones
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def client_environment(port: int) -> dict[str, str]:
    """What a process needs in its environment to use this server through boto3: S3, and
    CloudWatch (moto serves both; the local runners forward EMF metrics there)."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint(port),
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint(port),
        "AWS_ENDPOINT_URL_STS": endpoint(port),  # who publishes (the audit record)
        "AWS_ENDPOINT_URL_KMS": endpoint(port),  # signed manifests
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto_server process on a free loopback port, for tests and benchmarks; yields its
    endpoint URL and stops it on exit, whatever happens."""
    port = processes.free_port()
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    process = processes.start([binary, "-H", "127.0.0.1", "-p", str(port)], log=Path(os.devnull))
    try:
        processes.wait_for_port(port, process)
        yield endpoint(port)
    finally:
        processes.stop(process)


def check_port_free(port: int) -> None:
    """SystemExit naming the problem if 127.0.0.1:port cannot be bound.

    moto's server thread would die on a busy port and leave its start() waiting forever,
    so the port is tried here first.
    """
    error = processes.bind_error(port)
    if error:
        raise SystemExit(
            f"local.s3: cannot listen on 127.0.0.1:{port}: {error} "
            "(another S3 server? stop it or choose another --port)"
        )


def create_bucket(port: int, bucket: str) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint(port),
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    # As the stack creates it: versioned, with Object Lock (publish locks each version's files)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.s3",
        description="A real S3-protocol server (moto) on 127.0.0.1, the bucket created.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port on 127.0.0.1 (default %(default)s); fails if busy",
    )
    parser.add_argument(
        "--bucket", action="append", required=True, help="bucket to create (repeatable)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1..65535, got {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_port_free(args.port)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    try:
        for bucket in args.bucket:
            create_bucket(args.port, bucket)
        exports = "\n".join(f"export {k}={v}" for k, v in client_environment(args.port).items())
        print(
            f"S3 (moto) on {endpoint(args.port)}, bucket(s) {', '.join(args.bucket)} "
            f"(versioning, Object Lock), and CloudWatch, STS and KMS on the same endpoint. "
            f"In memory: gone "
            f"when this stops.\n"
            f"Use it from another shell with:\n{exports}\nReady. Ctrl-C stops.",
            flush=True,
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
