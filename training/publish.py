"""Publish a verified artifact to the S3 model registry (layout: mlcore.registry).

The version's files first, the manifest after them, latest.json last, so readers never see half
a version. Publishing is idempotent and resumable: each file is written only if its key is free
(If-None-Match: *); a file already stored with the same sha256 counts as written (a publish
that was interrupted completes), different bytes are refused (versions never change).

latest.json only changes by conditional writes (If-Match on the ETag it was read with; If-None-
Match: * when there is none), each carrying the next revision (mlcore.registry.Pointer), so two
publishers racing lose no change: the one whose write is refused reads the pointer again and
decides again. Publishing only ever raises the served version; an older one leaves the pointer
alone and says so. A pointer that cannot be read stops the publish before anything is uploaded
and says how to repair it.

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
from pathlib import Path

from mlcore.registry import (
    MANIFEST_FILE,
    SIGNATURE_ALGORITHM,
    SIGNATURE_FILE,
    Pointer,
    Registry,
    signed_statement,
)
from training.manifest import dumps, utc_timestamp, verify_files

# Against a silent S3, at most 2 attempts of (5 s to connect, 15 s without a byte).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
MAX_ATTEMPTS = 2
POINTER_ATTEMPTS = 5  # conditional writes refused because another publisher moved the pointer
PROGRESS_MIN_BYTES = 8 << 20  # uploads this large show a progress bar (on a terminal)
REPAIR_HINT = "make publish VERSION={version} REPAIR_POINTER=1"
# S3 Object Lock set on each version's files as they are written (template.yaml's
# ObjectLockMode and ObjectLockRetentionDays defaults; a test keeps them equal).
LOCK_MODE = "GOVERNANCE"
LOCK_DAYS = 365
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


class PublishError(Exception):
    """Publishing failed for a reason the user can act on; the message says which."""


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
            if new is not None:  # its revision goes on from what the damaged one showed
                new = dataclasses.replace(new, revision=exc.revision + 1)
        else:
            new = change(current)
        if new is None:
            return PointerChange(None, current)
        condition = {"if_match": etag} if etag else {"create_only": True}
        try:
            put(
                s3,
                bucket,
                registry.pointer_key,
                dumps(new.document(registry)),
                "application/json",
                **condition,
            )
        except ClientError as exc:
            if error_code(exc) in (*CONFLICT_CODES, "NoSuchKey"):
                continue  # moved (or deleted) since it was read: read it again
            raise
        append_audit(s3, bucket, registry, current, new, action)
        return PointerChange(new, current)
    raise PublishError(
        f"s3://{bucket}/{registry.pointer_key} changed {POINTER_ATTEMPTS} times while this "
        "publish tried to update it; run it again"
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


def read_audit(s3, bucket: str, registry: Registry, last: int = 10) -> list[dict]:
    """The last `last` audit records of this model, oldest first."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=audit_prefix(registry)
    ):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    keys = sorted(k for k in keys if k.endswith(".json"))[-last:] if last > 0 else []
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]


def raise_to(version: int, updated_at: str) -> Callable[[Pointer | None], Pointer | None]:
    """The change `make publish` makes: serve `version` if nothing newer is served."""

    def change(current: Pointer | None) -> Pointer | None:
        if current is None:
            return Pointer.first(version, updated_at)
        if current.version >= version:
            return None
        return current.moved_to(version, updated_at)

    return change


def _pointer_change(version: int, updated_at: str, canary: int | None):
    """raise_to, or with a canary share (percent): the version runs as the canary."""
    if canary is None:
        return raise_to(version, updated_at)
    from training.rollout import start_canary

    return start_canary(version, canary, updated_at)


def check_gate(manifest: dict, artifact_dir: Path, force: bool) -> None:
    """A model that failed the training job's gate (evaluation.gate, training/evaluate.py) is
    not published unless `force`. Manifests from before the gate record none and pass."""
    gate = (manifest.get("evaluation") or {}).get("gate") or {}
    if gate.get("passed", True) is True or force:
        return
    failed = "; ".join(
        str(check.get("message", check.get("name")))
        for check in gate.get("checks", [])
        if isinstance(check, dict) and not check.get("passed")
    )
    failed = failed or "see its report"
    raise PublishError(
        f"{artifact_dir}: this model failed its gate when it was made ({failed}); it is not "
        "published. Train again (its report.html says what to try), or publish it anyway with "
        "FORCE=1 (--force)"
    )


def publish(
    artifact_dir: Path,
    bucket: str,
    prefix: str,
    s3=None,
    now: float | None = None,
    repair_pointer: bool = False,
    progress: bool | None = False,
    lock_mode: str = LOCK_MODE,
    lock_days: int = LOCK_DAYS,
    signing_key: str | None = None,
    kms=None,
    canary: int | None = None,
    force: bool = False,
) -> dict:
    """Upload one artifact version (refused when its manifest records a failed gate, unless
    `force`); returns {"model": uri, "manifest": uri, "pointer": uri|None,
    "served": the version latest.json names after, "revision": its revision, "resumed": [files
    that were already stored with the same bytes], "locked": "MODE until DATE" or None,
    "notes": [what the user should know, e.g. why nothing could be locked], "signed": key
    or None}.

    Each file of the version is locked (S3 Object Lock, lock_mode for lock_days) as it is
    written, where the bucket has Object Lock; where it has not, a note says so and the
    publish goes on with create-only writes. signing_key: a KMS asymmetric key (RSA) that
    signs a short statement of the version (mlcore.registry.signed_statement), stored in
    SIGNATURE_FILE before the manifest."""
    from botocore.exceptions import BotoCoreError, ClientError

    manifest = json.loads((artifact_dir / MANIFEST_FILE).read_text())
    check_gate(manifest, artifact_dir, force)
    registry, version = Registry(prefix, manifest["name"]), int(manifest["version"])
    contents = verify_files(artifact_dir, manifest)
    manifest_bytes = dumps(manifest)
    now = now or time.time()
    lock = Lock.for_days(lock_mode, lock_days, now)
    s3 = s3 or s3_client()
    resumed, notes = [], []
    try:
        s3.head_bucket(Bucket=bucket)
        if not repair_pointer:
            try:
                read_pointer(s3, bucket, registry)  # before anything is uploaded
            except CorruptPointer as exc:
                raise PublishError(
                    f"{exc}; nothing was uploaded. To replace it with a pointer to this "
                    f"version, run: {REPAIR_HINT.format(version=version)}"
                ) from None
        cannot_lock = lock_support(s3, bucket)
        if cannot_lock:
            lock = None
            notes.append(
                f"s3://{bucket}: the version's files are not locked: {cannot_lock}; they are "
                "protected by create-only writes only (README, Registry security)"
            )
        files = [(name, content, "application/octet-stream") for name, content in contents.items()]
        if signing_key:
            signature = sign_version(kms, signing_key, manifest, manifest_bytes)
            files.append((SIGNATURE_FILE, signature, "application/json"))
        files.append((MANIFEST_FILE, manifest_bytes, "application/json"))  # the version's last
        for filename, content, content_type in files:
            key = registry.file_key(version, filename)
            if not put_immutable(s3, bucket, key, content, content_type, progress, lock):
                resumed.append(filename)
        change = update_pointer(
            s3,
            bucket,
            registry,
            _pointer_change(version, utc_timestamp(now), canary),
            action="publish" if canary is None else "canary",
            repair=repair_pointer,
        )
    except (BotoCoreError, ClientError) as exc:
        version_uri = f"s3://{bucket}/{registry.version_prefix(version)}"
        raise explain(exc, bucket, version_uri) from exc
    served = change.written or change.before
    return {
        "model": f"s3://{bucket}/{registry.model_key(version)}",
        "manifest": f"s3://{bucket}/{registry.manifest_key(version)}",
        "pointer": f"s3://{bucket}/{registry.pointer_key}" if change.written else None,
        "served": served.version,
        "revision": served.revision,
        "resumed": resumed,
        "locked": f"{lock.mode} until {lock.until.isoformat()}" if lock else None,
        "notes": notes,
        "signed": signing_key or None,
    }


def sign_version(kms, key_id: str, manifest: dict, manifest_bytes: bytes) -> bytes:
    """SIGNATURE_FILE's content: a KMS signature (MessageType RAW: KMS hashes the statement
    itself) of the version's statement. RSA PKCS#1 v1.5 signatures are deterministic, so a
    resumed publish writes the same bytes."""
    from botocore.exceptions import BotoCoreError, ClientError

    statement = signed_statement(
        manifest["name"], int(manifest["version"]), hashlib.sha256(manifest_bytes).hexdigest()
    )
    if kms is None:
        import boto3

        kms = boto3.client("kms")
    try:
        answer = kms.sign(
            KeyId=key_id,
            Message=statement,
            MessageType="RAW",
            SigningAlgorithm=SIGNATURE_ALGORITHM,
        )
    except (BotoCoreError, ClientError) as exc:
        raise PublishError(f"KMS could not sign with {key_id}: {exc}") from exc
    return dumps(
        {
            "algorithm": SIGNATURE_ALGORITHM,
            "key_id": answer["KeyId"],
            "statement": json.loads(statement),
            "signature": base64.b64encode(answer["Signature"]).decode(),
        }
    )


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def unpack_artifact(archive: Path, into: Path) -> Path:
    """An artifact archived as SageMaker uploads a model folder (model.tar.gz: the folder's
    files at the archive's root, or under one top folder) -> the unpacked artifact folder.
    Only regular files and folders are extracted, never outside `into` (tarfile's "data"
    filter)."""
    import tarfile

    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise PublishError(f"{archive}: not a readable tar archive ({exc})") from exc
    found = sorted(p.parent for p in into.rglob(MANIFEST_FILE))
    if len(found) != 1 or len(found[0].relative_to(into).parts) > 1:
        raise PublishError(
            f"{archive}: expected one {MANIFEST_FILE} at its root (or in one top folder), "
            f"found {len(found)}"
        )
    return found[0]


def newest_artifact(artifacts: Path, name: str) -> Path:
    versions = sorted(
        (
            int(p.name)
            for p in (artifacts / name).glob("*")
            if p.name.isdigit() and (p / MANIFEST_FILE).is_file()
        ),
        reverse=True,
    )
    if not versions:
        raise PublishError(f"no trained artifact under {artifacts / name}; run make train first")
    return artifacts / name / str(versions[0])
