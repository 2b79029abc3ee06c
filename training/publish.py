"""Publish a verified artifact to the S3 model registry (layout: mlcore.registry).

The version's files first, latest.json last, so readers never see half a version.

The endpoint comes from the standard AWS configuration (AWS_ENDPOINT_URL_S3 for a local S3).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

from mlcore.registry import MANIFEST_FILE, Pointer, Registry
from training.manifest import dumps, utc_timestamp, verify_files


class PublishError(Exception):
    """Publishing failed for a reason the user can act on; the message says which."""


def s3_client():
    import boto3

    return boto3.client("s3")


def explain(exc: Exception, bucket: str, version_uri: str) -> PublishError:
    """botocore's exceptions -> one sentence that says what to do."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, EndpointConnectionError):
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
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            return PublishError(f"bucket {bucket!r} does not exist; create it or pass --bucket")
        if code == "PreconditionFailed":
            return PublishError(
                f"{version_uri} already exists; versions are immutable, train a new one"
            )
        if code in ("AccessDenied", "403"):
            return PublishError(f"access denied to bucket {bucket!r}; check your permissions")
        return PublishError(f"S3 refused the request ({code}): {exc}")
    return PublishError(f"S3 request failed: {exc}")


def put(s3, bucket: str, key: str, body: bytes, content_type: str, create_only: bool) -> None:
    """SHA-256 checksum sent with the object (S3 rejects a corrupted upload), encrypted at rest.
    create_only: a conditional write (If-None-Match: *) that fails if the key exists, so two
    publishers racing for the same version cannot overwrite each other."""
    extra = {"IfNoneMatch": "*"} if create_only else {}
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        ServerSideEncryption="AES256",
        **extra,
    )


def read_pointer(s3, bucket: str, registry: Registry) -> Pointer | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=registry.pointer_key)
    except s3.exceptions.NoSuchKey:
        return None
    return Pointer.parse(obj["Body"].read())


def publish(
    artifact_dir: Path, bucket: str, prefix: str, s3=None, now: float | None = None
) -> dict:
    """Upload one artifact version; returns {"model": uri, "manifest": uri, "pointer": uri|None}.

    Refuses to overwrite an existing version (conditional writes). The pointer only moves
    forward: publishing an older version than the one latest.json names leaves it alone.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    manifest = json.loads((artifact_dir / MANIFEST_FILE).read_text())
    registry, version = Registry(prefix, manifest["name"]), int(manifest["version"])
    contents = verify_files(artifact_dir, manifest)
    s3 = s3 or s3_client()
    try:
        s3.head_bucket(Bucket=bucket)
        for filename, content in contents.items():
            put(
                s3,
                bucket,
                registry.file_key(version, filename),
                content,
                "application/octet-stream",
                create_only=True,
            )
        manifest_key = registry.manifest_key(version)
        put(s3, bucket, manifest_key, dumps(manifest), "application/json", create_only=True)
        current = read_pointer(s3, bucket, registry)
        pointer_uri = None
        if current is None or current.version < version:
            pointer = Pointer(version).document(registry, utc_timestamp(now or time.time()))
            put(
                s3,
                bucket,
                registry.pointer_key,
                dumps(pointer),
                "application/json",
                create_only=False,
            )
            pointer_uri = f"s3://{bucket}/{registry.pointer_key}"
    except (BotoCoreError, ClientError) as exc:
        version_uri = f"s3://{bucket}/{registry.version_prefix(version)}"
        raise explain(exc, bucket, version_uri) from exc
    return {
        "model": f"s3://{bucket}/{registry.model_key(version)}",
        "manifest": f"s3://{bucket}/{manifest_key}",
        "pointer": pointer_uri,
    }


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
