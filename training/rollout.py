"""Model rollouts on the registry's pointer: a canary, promote, rollback, status.

Every change is one conditional write of latest.json (training.registry_s3.update_pointer: If-Match
on the ETag it read, read again and decide again when another writer got there first), with the
document's rules in mlcore.registry.Pointer (canary and history). The inference function reads
the same pointer: the served ("stable") version answers the requests the canary does not take.
"""

from __future__ import annotations

import time
from typing import Any

from mlcore.registry import NothingToUndo, Pointer, Registry, check_version
from training.manifest import utc_timestamp
from training.registry_s3 import (
    CorruptPointer,
    PublishError,
    error_code,
    explain,
    object_versions,
    read_audit,
    read_pointer,
    s3_client,
    update_pointer,
)

AUDIT_SEARCH = 100  # audit records a repair looks through for the last valid pointer


def start_canary(version: int, percent: int, updated_at: str, files: dict | None = None):
    """The change `make publish CANARY=N` makes: `version` gets N% beside the served one
    (files: its S3 object version ids, recorded in the pointer)."""

    def change(current: Pointer | None) -> Pointer | None:
        if current is None:
            raise PublishError(
                "nothing is served yet, so there is nothing to run a canary beside: publish "
                "without CANARY first"
            )
        canary = current.canary
        if canary is not None and (canary.version, canary.percent) == (version, percent):
            return None  # already so: publishing again changes nothing
        return current.with_canary(version, percent, updated_at, files)

    return change


def _stored(s3, bucket: str, registry: Registry, version: int) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=registry.manifest_key(version))
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _apply(
    s3, bucket: str, registry: Registry, change, action: str, repair: bool = False
) -> Pointer | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        result = update_pointer(s3, bucket, registry, change, action=action, repair=repair)
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, bucket, f"s3://{bucket}/{registry.pointer_key}") from exc
    return result.written or result.before


def promote(
    bucket: str,
    prefix: str,
    name: str,
    version: int,
    s3=None,
    now: float | None = None,
    repair: bool = False,
) -> Pointer:
    """Serve `version` to everyone and clear the canary (the previous version to the history).
    repair: a pointer that cannot be read is replaced by one serving `version`."""
    version = check_version(version)
    registry, s3 = Registry(prefix, name), s3 or s3_client()
    if not _stored(s3, bucket, registry, version):
        raise PublishError(
            f"s3://{bucket}/{registry.manifest_key(version)} does not exist: publish version "
            f"{version} first"
        )
    stamp = utc_timestamp(now or time.time())
    files = object_versions(s3, bucket, registry, version)

    def change(current: Pointer | None) -> Pointer | None:
        if current is None:
            return Pointer.first(version, stamp, files)
        if current.version == version and current.canary is None:
            return None
        return current.promoted(version, stamp, files)

    return _apply(s3, bucket, registry, change, "promote", repair)


def rollback(
    bucket: str, prefix: str, name: str, s3=None, now: float | None = None, repair: bool = False
) -> Pointer:
    """Clear the canary if one runs, else serve the previous version again (NothingToUndo).
    repair: a pointer that cannot be read is replaced by the last valid pointer its audit
    trail recorded (the state before it was damaged), as the next revision."""
    registry, s3 = Registry(prefix, name), s3 or s3_client()
    stamp = utc_timestamp(now or time.time())

    def change(current: Pointer | None) -> Pointer | None:
        if current is None and repair:
            return last_valid(s3, bucket, registry).moved_to_now(stamp)
        if current is None:
            raise NothingToUndo(f"s3://{bucket}/{registry.pointer_key} does not exist")
        return current.rolled_back(stamp)

    action = "repair" if repair else "rollback"
    return _apply(s3, bucket, registry, change, action, repair)


def last_valid(s3, bucket: str, registry: Registry) -> Pointer:
    """The newest pointer in the audit trail that the one validator accepts whole."""
    for record in reversed(read_audit(s3, bucket, registry, last=AUDIT_SEARCH)):
        try:
            pointer = Pointer.parse(record.get("to") if isinstance(record, dict) else None)
        except (ValueError, TypeError):
            continue
        if pointer.canary_refused is None:
            return pointer
    raise PublishError(
        f"no valid pointer in the last {AUDIT_SEARCH} records of s3://{bucket}/"
        f"{registry.root}/audit/: name a version instead (make promote VERSION=... "
        "REPAIR_POINTER=1)"
    )


def status(bucket: str, prefix: str, name: str, s3=None) -> dict[str, Any]:
    """The pointer as a dict: served version, revision, canary and share, history."""
    from botocore.exceptions import BotoCoreError, ClientError

    registry, s3 = Registry(prefix, name), s3 or s3_client()
    try:
        pointer, _ = read_pointer(s3, bucket, registry)
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, bucket, f"s3://{bucket}/{registry.pointer_key}") from exc
    except CorruptPointer as exc:  # shown, never a crash: the way out is a repair
        return {
            "pointer": f"s3://{bucket}/{registry.pointer_key}",
            "served": None,
            "refused": str(exc),
        }
    if pointer is None:
        return {"pointer": f"s3://{bucket}/{registry.pointer_key}", "served": None}
    canary = pointer.canary
    return {
        "canary_refused": pointer.canary_refused,
        "pointer": f"s3://{bucket}/{registry.pointer_key}",
        "served": pointer.version,
        "revision": pointer.revision,
        "updated_at": pointer.updated_at,
        "canary": None if canary is None else {"version": canary.version, "share": canary.percent},
        "history": pointer.history,
    }


def describe(state: dict[str, Any]) -> str:
    if state.get("refused"):
        return (
            f"{state['refused']}\nreaders keep serving the last good version they read; repair: "
            "make rollback REPAIR_POINTER=1 (the audit trail's last valid pointer) or make "
            "promote VERSION=<a published version> REPAIR_POINTER=1"
        )
    if state["served"] is None:
        return f"{state['pointer']}: nothing published yet"
    canary = state["canary"]
    lines = [
        f"{state['pointer']} (revision {state['revision']}, {state['updated_at']})",
        f"served   version {state['served']}"
        + (f" ({100 - canary['share']}% of requests)" if canary else " (all requests)"),
        f"canary   version {canary['version']} ({canary['share']}% of requests)"
        if canary
        else "canary   none",
    ]
    if state.get("canary_refused"):
        lines.append(f"canary   refused, not served: {state['canary_refused']}")
    history = ", ".join(
        f"{h['version']} (until {h.get('until')})" for h in reversed(state["history"])
    )
    lines.append(f"history  {history or 'empty'}")
    return "\n".join(lines)
