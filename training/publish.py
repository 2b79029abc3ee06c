"""Publish a verified artifact to the S3 model registry (layout: mlcore.registry; the S3
writes themselves: training.registry_s3).

The version's files first, the manifest after them, latest.json last, so readers never see half
a version. Publishing is idempotent and resumable: each file is written only if its key is free
(If-None-Match: *); a file already stored with the same sha256 counts as written (a publish
that was interrupted completes), different bytes are refused (versions never change).

Publishing only ever raises the served version (a conditional write of latest.json,
registry_s3.update_pointer); an older one leaves the pointer alone and says so. A pointer that
cannot be read stops the publish before anything is uploaded and says how to repair it. An
artifact may also come as an archive (SageMaker's model.tar.gz): unpack_artifact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mlcore import documents
from mlcore.model_signature import BUNDLE_FILE
from mlcore.registry import (
    MANIFEST_FILE,
    Pointer,
    Registry,
    is_decimal,
)
from training.manifest import dumps, utc_timestamp, verify_files
from training.registry_s3 import (
    LOCK_DAYS,
    LOCK_MODE,
    CorruptPointer,
    Lock,
    PublishError,
    explain,
    lock_support,
    object_versions,
    put_immutable,
    read_pointer,
    s3_client,
    update_pointer,
)
from training.rollout import start_canary

REPAIR_HINT = "make publish VERSION={version} REPAIR_POINTER=1"


def raise_to(
    version: int, updated_at: str, files: dict | None = None
) -> Callable[[Pointer | None], Pointer | None]:
    """The change `make publish` makes: serve `version` if nothing newer is served. files: the
    S3 object version ids of its files (registry_s3.object_versions), recorded in the pointer."""

    def change(current: Pointer | None) -> Pointer | None:
        if current is None:
            return Pointer.first(version, updated_at, files)
        if current.version >= version:
            return None
        return current.moved_to(version, updated_at, files)

    return change


def _pointer_change(version: int, updated_at: str, canary: int | None, files: dict | None):
    """raise_to, or with a canary share (percent): the version runs as the canary."""
    if canary is None:
        return raise_to(version, updated_at, files)
    return start_canary(version, canary, updated_at, files)


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
    publish goes on with create-only writes. signing_key: a KMS key (ECC_NIST_P256) that signs
    the version's files in the OpenSSF Model Signing format (mlcore.model_signature), stored in
    BUNDLE_FILE before the manifest."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:  # nothing invalid is ever written: the one validator, as readers will check it
        manifest = documents.parse((artifact_dir / MANIFEST_FILE).read_bytes(), MANIFEST_FILE)
    except ValueError as exc:
        raise PublishError(f"{artifact_dir}: {exc}; nothing was uploaded") from None
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
                "protected by create-only writes only (docs/security.md)"
            )
        files = [(name, content, "application/octet-stream") for name, content in contents.items()]
        if signing_key:
            signed = {**contents, MANIFEST_FILE: manifest_bytes}
            stored = read_if_stored(s3, bucket, registry.file_key(version, BUNDLE_FILE))
            bundle = sign_version(kms, signing_key, version, signed, stored)
            files.append((BUNDLE_FILE, bundle, "application/json"))
        files.append((MANIFEST_FILE, manifest_bytes, "application/json"))  # the version's last
        for filename, content, content_type in files:
            key = registry.file_key(version, filename)
            if not put_immutable(s3, bucket, key, content, content_type, progress, lock):
                resumed.append(filename)
        files = object_versions(s3, bucket, registry, version)
        change = update_pointer(
            s3,
            bucket,
            registry,
            _pointer_change(version, utc_timestamp(now), canary, files),
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


def read_if_stored(s3, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None if there is none."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def sign_version(
    kms, key_id: str, version: int, files: dict[str, bytes], stored: bytes | None
) -> bytes:
    """BUNDLE_FILE's content: an OpenSSF Model Signing bundle of the version's files (exact
    bytes), signed by the KMS key (training/kms_signer.py). ECDSA signatures are randomised, so
    a resumed publish keeps the bundle it `stored` when that signs the same files."""
    from training.kms_signer import SigningError
    from training.kms_signer import sign_version as sign_bundle

    if kms is None:
        import boto3

        kms = boto3.client("kms")
    try:
        return sign_bundle(kms, key_id, files, str(version), stored)
    except SigningError as exc:
        raise PublishError(str(exc)) from exc


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
            if is_decimal(p.name) and (p / MANIFEST_FILE).is_file()
        ),
        reverse=True,
    )
    if not versions:
        raise PublishError(f"no trained artifact under {artifacts / name}; run make train first")
    return artifacts / name / str(versions[0])
