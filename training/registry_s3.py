"""The model registry on S3, as the training side writes it (layout: mlcore.registry): the
bounded boto3 client, uploads (checksummed, encrypted, optionally Object-Locked), create-only
writes of a version's files, the pointer's conditional writes and their audit records, and
S3's errors told as one sentence that says what to do.

latest.json only changes by conditional writes (If-Match on the ETag it was read with; If-None-
Match: * when there is none), each carrying the next revision (mlcore.registry.Pointer), so two
writers racing lose no change: the one whose write is refused reads the pointer again and
decides again (update_pointer). What a change is, is the caller's: publish.py (raise the
served version), rollout.py (canary, promote, rollback).

The endpoint comes from the standard AWS configuration (AWS_ENDPOINT_URL_S3 for a local S3).
Timeouts are bounded: an S3 that does not answer is a clear error, not a hang.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import getpass
import hashlib
import io
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlcore import documents
from mlcore.registry import (
    MANIFEST_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    Pointer,
    Registry,
    is_decimal,
)
from training.manifest import dumps

# Against a silent S3, at most 2 attempts of (5 s to connect, 15 s without a byte).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
MAX_ATTEMPTS = 2
POINTER_ATTEMPTS = 5  # conditional writes refused because another publisher moved the pointer
PROGRESS_MIN_BYTES = 8 << 20  # uploads this large show a progress bar (on a terminal)
# S3 Object Lock set on each version's files as they are written (template.yaml's
# ObjectLockMode and ObjectLockRetentionDays defaults; a test keeps them equal).
LOCK_MODE = "GOVERNANCE"
LOCK_DAYS = 365
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


class PublishError(Exception):
    """Publishing, or moving the pointer, failed for a reason the user can act on; the message
    says which."""


class CorruptPointer(PublishError):
    """latest.json exists but is not a pointer this code can read. `revision`: the revision
    it still shows, if any (a repair writes the next one), else 0."""

    def __init__(self, message: str, etag: str, revision: int = 0):
        super().__init__(message)
        self.etag = etag
        self.revision = revision


def _salvaged_revision(data: bytes) -> int:
    try:
        revision = json.loads(data).get("revision", 0)
    except (ValueError, AttributeError, RecursionError):
        return 0
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else 0


def s3_client():
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )
    return boto3.client("s3", config=config)


def explain(exc: Exception, bucket: str, version_uri: str) -> PublishError:
    """botocore's exceptions -> one sentence that says what to do."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return PublishError(
            f"the S3 endpoint did not answer within {READ_TIMEOUT} s ({exc}); check that it "
            "is up (make s3-local) and AWS_ENDPOINT_URL_S3 / your network; run the same "
            "command again when it answers: a publish resumes where it stopped"
        )
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return PublishError(
            f"cannot reach the S3 endpoint ({exc}); start it (make s3-local) or "
            "check AWS_ENDPOINT_URL_S3 / your AWS configuration"
        )
    if isinstance(exc, NoCredentialsError):
        return PublishError(
            "no AWS credentials found; configure them (aws configure, or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for a local S3)"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in ("NoSuchBucket", "404"):
            return PublishError(f"bucket {bucket!r} does not exist; create it or pass --bucket")
        if code in ("AccessDenied", "403"):
            return PublishError(f"access denied to bucket {bucket!r}; check your permissions")
        return PublishError(f"S3 refused the request ({code}): {exc}")
    return PublishError(f"S3 request failed: {exc}")


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class _Reading(io.BytesIO):
    """An upload body that moves a progress bar as the HTTP client reads it."""

    def __init__(self, data: bytes, bar):
        super().__init__(data)
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self._bar.update(len(chunk))
        return chunk


def put(
    s3,
    bucket: str,
    key: str,
    body: bytes,
    content_type: str,
    create_only: bool = False,
    if_match: str | None = None,
    progress: bool | None = False,
    lock: Lock | None = None,
) -> None:
    """SHA-256 checksum sent with the object (S3 rejects a corrupted upload), encrypted at rest
    (SSE-KMS with MODEL_KMS_KEY_ARN when it is set, else SSE-S3).
    create_only: written only if the key is free (If-None-Match: *); if_match: only if the
    object still has this ETag. progress: a bar on stderr (None: on a terminal only).
    lock: S3 Object Lock retention set on the object as it is written."""
    extra = {"IfNoneMatch": "*"} if create_only else {}
    if if_match is not None:
        extra = {"IfMatch": if_match}
    if lock is not None:
        extra.update(ObjectLockMode=lock.mode, ObjectLockRetainUntilDate=lock.until)
    extra.update(encryption())
    bar = None
    data = body
    if progress is not False and len(body) >= PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        bar = tqdm(
            total=len(body),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=key.rsplit("/", 1)[-1],
            disable=None if progress is None else False,
            file=sys.stderr,
        )
        data = _Reading(body, bar)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
            **extra,
        )
    finally:
        if bar is not None:
            bar.close()


KMS_KEY_ENV = "MODEL_KMS_KEY_ARN"  # template.yaml's ModelKmsKeyArn; `make publish KMS_KEY=...`


def encryption() -> dict[str, str]:
    """The encryption of every object this module writes (one place, so promote and rollback
    write the pointer as publish does)."""
    key = os.environ.get(KMS_KEY_ENV, "").strip()
    if key:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}
    return {"ServerSideEncryption": "AES256"}


@dataclass(frozen=True)
class Lock:
    """S3 Object Lock retention: `mode` (GOVERNANCE or COMPLIANCE) until `until`."""

    mode: str
    until: datetime.datetime

    @classmethod
    def for_days(cls, mode: str, days: int, now: float) -> Lock:
        if mode not in LOCK_MODES:
            raise PublishError(f"lock mode {mode!r} is not one of {', '.join(LOCK_MODES)}")
        if days < 1:
            raise PublishError(f"lock days must be at least 1, got {days}")
        start = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(microsecond=0)
        return cls(mode, start + datetime.timedelta(days=days))


def lock_support(s3, bucket: str) -> str | None:
    """None if the bucket has Object Lock enabled, else why the versions cannot be locked."""
    from botocore.exceptions import ClientError

    try:
        config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        if error_code(exc) == "ObjectLockConfigurationNotFoundError":
            return "the bucket has no Object Lock (it can only be enabled on a versioned bucket)"
        return f"its Object Lock configuration cannot be read ({error_code(exc) or exc})"
    if config.get("ObjectLockEnabled") != "Enabled":
        return "Object Lock is not enabled on the bucket"
    return None


def stored_sha256(s3, bucket: str, key: str) -> str:
    """The sha256 of a stored object: the checksum S3 keeps (uploads from here send one),
    else computed from its bytes."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum:  # "-N": a checksum of the parts of a multipart upload
        return base64.b64decode(checksum).hex()
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def put_immutable(
    s3,
    bucket: str,
    key: str,
    body: bytes,
    content_type: str,
    progress: bool | None,
    lock: Lock | None = None,
) -> bool:
    """Write a file of a version; True if written now, False if the same bytes were already
    there (a publish resumed). Different bytes under the key are a PublishError."""
    from botocore.exceptions import ClientError

    for attempt in range(3):
        try:
            put(s3, bucket, key, body, content_type, create_only=True, progress=progress, lock=lock)
            return True
        except ClientError as exc:
            if error_code(exc) not in CONFLICT_CODES:
                raise
            if error_code(exc) in ("ConditionalRequestConflict", "409") and attempt < 2:
                time.sleep(0.5)  # another writer of the same key is in flight: look again
                continue
        local = hashlib.sha256(body).hexdigest()
        stored = stored_sha256(s3, bucket, key)
        if stored == local:
            return False
        raise PublishError(
            f"s3://{bucket}/{key} already holds different bytes (sha256 {stored[:12]}..., "
            f"this artifact's is {local[:12]}...): a published version never changes; train "
            "a new version"
        )
    raise PublishError(f"s3://{bucket}/{key}: S3 kept reporting a conflicting write")


def object_versions(s3, bucket: str, registry: Registry, version: int) -> dict[str, str] | None:
    """The S3 object version ids of `version`'s manifest and model as stored now (its signature's
    too, if it has one), for the pointer: the function then reads exactly these objects, so a
    key written again cannot serve other bytes. None on a bucket without versioning (S3 says
    "null")."""
    from botocore.exceptions import ClientError

    found = {}
    for filename in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
        try:
            head = s3.head_object(Bucket=bucket, Key=registry.file_key(version, filename))
        except ClientError as exc:
            if filename == SIGNATURE_FILE and error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                continue
            raise
        version_id = head.get("VersionId")
        if not version_id or version_id == "null":
            return None
        found[filename] = version_id
    return found


def read_pointer(s3, bucket: str, registry: Registry) -> tuple[Pointer | None, str | None]:
    """(the pointer, its ETag), (None, None) if there is none; CorruptPointer if unreadable."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=registry.pointer_key)
    except s3.exceptions.NoSuchKey:
        return None, None
    etag, data = obj["ETag"], obj["Body"].read()
    try:
        return Pointer.parse(data), etag
    except ValueError as exc:
        raise CorruptPointer(
            f"s3://{bucket}/{registry.pointer_key} is not a valid pointer ({exc})",
            etag,
            max(0, _salvaged_revision(data)),
        ) from None


@dataclass(frozen=True)
class PointerChange:
    written: Pointer | None  # None: left as it was
    before: Pointer | None


def update_pointer(
    s3,
    bucket: str,
    registry: Registry,
    change: Callable[[Pointer | None], Pointer | None],
    repair: bool = False,
    action: str = "publish",
) -> PointerChange:
    """Apply `change` (current pointer -> new one, or None to leave it) by a conditional write,
    reading again and deciding again each time another writer got there first. repair: an
    unreadable pointer counts as none and is replaced (If-Match on its ETag). Every write is
    followed by its audit record (append_audit): `action` says what moved the pointer."""
    from botocore.exceptions import ClientError

    for _ in range(POINTER_ATTEMPTS):
        try:
            current, etag = read_pointer(s3, bucket, registry)
        except CorruptPointer as exc:
            if not repair:
                raise
            current, etag = None, exc.etag
            new = change(None)
            if new is not None:  # its revision goes on from the damaged one's and the audit's
                last = max(exc.revision, last_audited_revision(s3, bucket, registry))
                new = dataclasses.replace(new, revision=last + 1)
        else:
            new = change(current)
        if new is None:
            return PointerChange(None, current)
        condition = {"if_match": etag} if etag else {"create_only": True}
        try:  # nothing invalid is ever written: the one validator, as every reader checks it
            document = documents.check(new.document(registry), documents.POINTER)
        except ValueError as exc:
            raise PublishError(
                f"{action} would write an invalid pointer ({exc}); nothing was written"
            ) from None
        try:
            put(s3, bucket, registry.pointer_key, dumps(document), "application/json", **condition)
        except ClientError as exc:
            if error_code(exc) in (*CONFLICT_CODES, "NoSuchKey"):
                continue  # moved (or deleted) since it was read: read it again
            raise
        append_audit(s3, bucket, registry, current, new, action)
        return PointerChange(new, current)
    raise PublishError(
        f"s3://{bucket}/{registry.pointer_key} changed {POINTER_ATTEMPTS} times while this "
        f"{action} tried to update it; run it again"
    )


AUDIT_DIR = "audit/pointer"  # PREFIX/NAME/audit/pointer/REVISION.json, beside latest.json


def audit_prefix(registry: Registry) -> str:
    return f"{registry.root}/{AUDIT_DIR}/"


@functools.cache
def caller() -> str:
    """Who is writing: the AWS principal (STS GetCallerIdentity), else the local user.

    Against a local S3 without a local STS (AWS_ENDPOINT_URL_S3 set, AWS_ENDPOINT_URL_STS not),
    AWS is not asked: the identity there is not a real one anyway."""
    local = f"{getpass.getuser()}@{socket.gethostname()}"
    if os.environ.get("AWS_ENDPOINT_URL_S3") and not (
        os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
    ):
        return f"{local} (local S3, no STS)"
    try:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        return boto3.client("sts", config=config).get_caller_identity()["Arn"]
    except Exception as exc:  # no credentials, no network: the record still says who ran it
        return f"{local} (STS: {type(exc).__name__})"


def append_audit(
    s3, bucket: str, registry: Registry, before: Pointer | None, after: Pointer, action: str
) -> str:
    """The append-only record of one pointer change (who, when, from, to), create-only under
    the new revision, which the conditional write made unique. Returns its key."""
    key = f"{audit_prefix(registry)}{after.revision:012d}.json"
    record = {
        "revision": after.revision,
        "action": action,
        "at": after.updated_at,
        "who": caller(),
        "from": before.document(registry) if before is not None else None,
        "to": after.document(registry),
    }
    put(s3, bucket, key, dumps(record), "application/json", create_only=True)
    return key


def last_audited_revision(s3, bucket: str, registry: Registry) -> int:
    """The highest revision the audit trail has a record of (0: none)."""
    revisions = [0]
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=audit_prefix(registry)
    ):
        for item in page.get("Contents", []):
            stem = item["Key"].rsplit("/", 1)[-1].removesuffix(".json")
            if is_decimal(stem):
                revisions.append(int(stem))
    return max(revisions)


def read_audit(s3, bucket: str, registry: Registry, last: int = 10) -> list[dict]:
    """The last `last` audit records of this model, oldest first."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=audit_prefix(registry)
    ):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    keys = sorted(k for k in keys if k.endswith(".json"))[-last:] if last > 0 else []
    records = []
    for key in keys:
        try:  # a damaged record is shown as such, never a crash
            records.append(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except ValueError:
            records.append({"unreadable": key})
    return records
