"""The lean floor: the floor (bench/floor.py) with the lightest well-kept S3 client measured,
obstore (Rust's object_store), instead of boto3. Cold start: import numpy and LiteRT, make the
client, fetch the model with one GET, build the interpreter; the request as the floor's.
Credentials and endpoint from the standard environment variables, as S3Store reads them.
"""

from __future__ import annotations

import os

from bench.floor import LOAD_PHASE, Floor, load  # noqa: F401 (the floor's interpreter and answer)


def s3_client():
    from obstore.store import S3Store

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options = {"endpoint": endpoint, "client_options": {"allow_http": True}} if endpoint else {}
    return lambda bucket: S3Store(bucket, **options)


def fetch(s3, bucket: str, key: str, folder: str) -> bytes:
    import obstore

    return obstore.get(s3(bucket), key).bytes().to_bytes()  # one GET, kept in memory
