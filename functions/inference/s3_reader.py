"""The functions' S3 client over obstore (Rust's object_store), behind the one seam model_store
gives it (`get_object(Bucket=, Key=) -> {"Body": stream}`): reads, and for the batch function
(batch.py) one write per batch (`put_object(Bucket=, Key=, Body=, ContentType=)`).

Why obstore and not boto3 (bench/README.md, measured on the bench's Lambda-like path): boto3's
import and client cost about 190 ms of every cold start; obstore's import, client and first
GET about 15 ms, and its single GET streamed with read-ahead fetches a 100 MB model faster than
boto3's own download. boto3 stays where it serves: training, publishing, tests.

What the Lambda environment provides, read the way AWS's SDKs read it:
- the region from AWS_REGION (AWS_DEFAULT_REGION), the endpoint from the standard
  AWS_ENDPOINT_URL_S3 (AWS_ENDPOINT_URL), plain HTTP allowed only for an http:// endpoint (the
  local S3 on loopback);
- credentials: the environment variables Lambda sets for on-demand functions (fixed for the
  environment's life), given to the store as they are when it is made; else the container
  credentials endpoint that Lambda gives SnapStart functions (AWS_CONTAINER_CREDENTIALS_FULL_URI
  with the token in AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  obstore itself reads only the file), through `LambdaCredentials`, refreshed before they
  expire. (Only there: a Python credential provider makes obstore import `inspect` on the
  first request, about 6 ms of the cold start's first GET.)

Bounded like the hardening issue's boto3 client: at most 2 attempts of (2 s to connect + 5 s
between bytes received); a request's own wait is bounded by its deadline (model_store).
Creating the client is `create_client()`, the one place a runtime hook (SnapStart's
after-restore) needs to call again.
"""

from __future__ import annotations

import io
import json
import os
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

CONNECT_TIMEOUT = timedelta(seconds=2)
READ_TIMEOUT = timedelta(seconds=5)  # between bytes received: a stalled transfer fails
MAX_ATTEMPTS = 2
RETRY_TIMEOUT = timedelta(seconds=10)
# The whole of one GET, body included: Lambda's longest invocation. Stalls are the read
# timeout's job; this only bounds a transfer that trickles.
REQUEST_TIMEOUT = timedelta(minutes=15)
CHUNK_BYTES = 1 << 20
# Chunks read ahead of the consumer by the body's thread (memory: about this many MiB): the
# network transfer goes on while the store hashes and writes the previous chunks.
READ_AHEAD_CHUNKS = 8
CREDENTIALS_TIMEOUT_SECONDS = 2.0
# Environment credentials are read again this often (Lambda keeps them for the environment's
# life; a restored SnapStart snapshot gets a new client anyway).
ENVIRONMENT_CREDENTIALS_SECONDS = 3600


class CredentialsError(Exception):
    """No usable credentials in the environment, or the credentials endpoint refused."""


def environment_keys(environ: Mapping[str, str]) -> dict[str, str | None] | None:
    """The credentials Lambda sets as environment variables (on demand), or None: both the key
    id and the secret are needed; the session token may be absent."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return None
    return {
        "access_key_id": key,
        "secret_access_key": secret,
        "token": environ.get("AWS_SESSION_TOKEN") or None,
    }


class LambdaCredentials:
    """obstore's credential provider: a dict of access_key_id, secret_access_key, token and
    expires_at, from the environment variables (first, as AWS's SDKs do) or the container
    credentials endpoint. `fetch(url, headers, timeout) -> bytes` is the HTTP GET (tests)."""

    def __init__(
        self,
        environ: Mapping[str, str] = os.environ,
        fetch: Callable[[str, dict[str, str], float], bytes] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._environ = environ
        self._fetch = fetch or _http_get
        self._now = now

    def __call__(self) -> dict[str, Any]:
        env = self._environ
        keys = environment_keys(env)
        if keys is not None:
            return {
                **keys,
                "expires_at": self._now() + timedelta(seconds=ENVIRONMENT_CREDENTIALS_SECONDS),
            }
        uri = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if uri:
            return self._from_endpoint(uri)
        raise CredentialsError(
            "no AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor "
            "AWS_CONTAINER_CREDENTIALS_FULL_URI is set"
        )

    def _token(self) -> str | None:
        token = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        path = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if not token and path:
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
        return token or None

    def _from_endpoint(self, uri: str) -> dict[str, Any]:
        token = self._token()
        headers = {"Authorization": token} if token else {}
        try:
            document = json.loads(self._fetch(uri, headers, CREDENTIALS_TIMEOUT_SECONDS))
            expiration = document.get("Expiration")
            return {
                "access_key_id": document["AccessKeyId"],
                "secret_access_key": document["SecretAccessKey"],
                "token": document.get("Token"),
                "expires_at": _parse_time(expiration) if expiration else None,
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CredentialsError(
                f"the container credentials endpoint gave no credentials "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from None


def _http_get(url: str, headers: dict[str, str], timeout: float) -> bytes:
    import urllib.request  # 10 ms (http.client, email, ssl): only SnapStart's credentials need it

    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (AWS's URI)
        return response.read()


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Body:
    """One GET's body, read ahead by a thread into a bounded queue: `read(n)` returns the next
    chunk (about n bytes; the whole rest of the object without n), b"" at the end, and raises
    what the transfer raised. `close()` lets the thread go."""

    _END = object()

    def __init__(self, chunks):
        self._queue: queue.Queue = queue.Queue(READ_AHEAD_CHUNKS)
        self._closed = threading.Event()
        self._done = False
        thread = threading.Thread(target=self._pump, args=(chunks,), name="s3-read", daemon=True)
        thread.start()

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, chunks) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
            self._put(exc)

    def _next(self) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if item is self._END:
            self._done = True
            return b""
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            return self._next()
        parts = []
        while chunk := self._next():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._closed.set()


class S3Reader:
    """`get_object(Bucket=, Key=)` and `list_objects_v2(Bucket=, Prefix=, Delimiter="/")`
    (boto3's names and answers) over obstore: one S3Store per bucket, made on first use."""

    def __init__(self, store_factory: Callable[[str], Any]):
        self._store_factory = store_factory
        self._stores: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _store(self, bucket: str) -> Any:
        with self._lock:
            if bucket not in self._stores:
                self._stores[bucket] = self._store_factory(bucket)
            return self._stores[bucket]

    def get_object(  # noqa: N803 (boto3's names)
        self, Bucket: str, Key: str, VersionId: str | None = None
    ) -> dict[str, Any]:
        """One GET; of the object version VersionId when given (as boto3's)."""
        import obstore

        options = {"version": VersionId} if VersionId else None
        result = obstore.get(self._store(Bucket), Key, options=options)
        size = result.meta["size"]
        if size <= CHUNK_BYTES:  # a registry document, a small model: no read-ahead thread
            return {"Body": io.BytesIO(result.bytes().to_bytes()), "ContentLength": size}
        return {"Body": _Body(result.stream(CHUNK_BYTES)), "ContentLength": size}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803
        """One object written whole (the batch function's records: a few hundred KB at most)."""
        import obstore

        obstore.put(
            self._store(Bucket),
            Key,
            Body,
            attributes={"Content-Type": ContentType},
            use_multipart=False,
        )

    def list_objects_v2(self, Bucket: str, Prefix: str, Delimiter: str) -> dict[str, Any]:  # noqa: N803
        """The "folders" under Prefix (CommonPrefixes, as boto3 answers them): only "/" as the
        delimiter, which is obstore's."""
        import obstore

        if Delimiter != "/":
            raise ValueError("only '/' is supported as the delimiter")
        # obstore takes the prefix without its trailing "/" and answers "folders" without one
        listed = obstore.list_with_delimiter(self._store(Bucket), Prefix.rstrip("/") or None)
        return {"CommonPrefixes": [{"Prefix": f"{p}/"} for p in listed["common_prefixes"]]}


def endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The standard endpoint settings, the service-specific one first."""
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def store_options(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """obstore's S3Store keyword arguments for this environment (see the module docstring)."""
    url = endpoint(environ)
    options: dict[str, Any] = {
        "client_options": {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "timeout": REQUEST_TIMEOUT,
            "allow_http": bool(url and url.startswith("http://")),
        },
        "retry_config": {"max_retries": MAX_ATTEMPTS - 1, "retry_timeout": RETRY_TIMEOUT},
        "region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    if url:
        options["endpoint"] = url
    keys = environment_keys(environ)
    if keys is None:
        options["credential_provider"] = LambdaCredentials(environ)
    else:
        options["access_key_id"] = keys["access_key_id"]
        options["secret_access_key"] = keys["secret_access_key"]
        if keys["token"]:
            options["session_token"] = keys["token"]
    return options


def create_client(environ: Mapping[str, str] = os.environ) -> S3Reader:
    """The function's S3 client (the one place it is made: SnapStart's after-restore hook
    makes it again, so credentials and connections are never a snapshot's)."""
    from obstore.store import S3Store  # ~10 ms: when the first model is loaded

    options = store_options(environ)
    return S3Reader(lambda bucket: S3Store(bucket, **options))
