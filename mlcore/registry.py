"""The model registry's layout on S3, one prefix per model name:

    s3://BUCKET/PREFIX/NAME/latest.json            the pointer, written last by the publisher
    s3://BUCKET/PREFIX/NAME/VERSION/manifest.json  what the version is; sizes and sha256 of files
    s3://BUCKET/PREFIX/NAME/VERSION/model.tflite

VERSION is a positive integer that grows with time (TF Serving's numeric version directories).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from mlcore import documents

POINTER_FILE = "latest.json"
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.tflite"
# Versions signed before OpenSSF Model Signing bundles (mlcore.model_signature, which the
# publisher writes now): SIGNATURE_FILE beside the manifest holds a KMS signature of
# signed_statement(...) with this algorithm (KMS's name), still checked by the function offline.
SIGNATURE_FILE = "signature.json"
SIGNATURE_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"


def signed_statement(name: str, version: int, manifest_sha256: str) -> bytes:
    """What is signed for a version: its name, version and the sha256 of its manifest's exact
    bytes (which holds the model's sha256), as canonical JSON; short, for KMS's 4,096-byte RAW
    messages."""
    statement = {"manifest_sha256": manifest_sha256, "name": name, "version": version}
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def read_signature(document: Any) -> bytes:
    """The signature in a SIGNATURE_FILE document (its bytes, or a dict already read), checked
    by the one validator (mlcore.documents), or a ValueError naming the field (never another
    exception): the document is hostile until the signature verifies."""
    if isinstance(document, bytes | str):
        document = documents.loads(document, documents.SIGNATURE)
    documents.check(document, documents.SIGNATURE)
    return base64.b64decode(document["signature"], validate=True)


# What the training job writes. Schema 2 added the input's colour and preprocessing policy and
# the per-class evaluation; the function still serves schema 1 models (grey, resized).
MANIFEST_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)

# One rule for model names, everywhere (template.yaml's ModelName AllowedPattern is this text;
# a test holds them equal): it becomes an S3 key segment and a TF Serving URL segment.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_model_name(name: str) -> str:
    """`name` if it follows the rule, else a ValueError that states the rule."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ValueError(f"model name {name!r}: use {NAME_RULE}")
    return name


def is_decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "¹" (which int() refuses) and "١٢" (which
    int() reads as 12), so a caller's text checked with isdigit() alone can raise or alias."""
    return text.isascii() and text.isdigit()


def check_version(version: Any) -> int:
    """A positive integer version (int or its decimal text in ASCII digits), else a ValueError.
    Never coerced from a float, a boolean or other digits ("١٢" is not 12)."""
    text = str(version)
    if isinstance(version, bool) or not is_decimal(text) or int(text) <= 0:
        raise ValueError(f"version {version!r}: must be a positive integer")
    return int(text)


def check_share(percent: Any) -> int:
    """A canary's share of requests: an integer percent from 1 to 99 (never coerced from a
    string, a float or a boolean), else a ValueError."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise ValueError(f"canary share {percent!r}: an integer percent from 1 to 99")
    return percent


@dataclass(frozen=True)
class Registry:
    """The keys of one model's registry under a bucket prefix ("" for the bucket's root)."""

    prefix: str
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.strip("/"))
        check_model_name(self.name)

    @property
    def root(self) -> str:
        """PREFIX/NAME (no trailing slash)."""
        return f"{self.prefix}/{self.name}" if self.prefix else self.name

    @property
    def pointer_key(self) -> str:
        return f"{self.root}/{POINTER_FILE}"

    def version_prefix(self, version: int) -> str:
        return f"{self.root}/{check_version(version)}/"

    def file_key(self, version: int, filename: str) -> str:
        return self.version_prefix(version) + filename

    def manifest_key(self, version: int) -> str:
        return self.file_key(version, MANIFEST_FILE)

    def model_key(self, version: int) -> str:
        return self.file_key(version, MODEL_FILE)


HISTORY_LIMIT = 20  # served versions the pointer remembers for rollbacks


# The roles of the versions a pointer names: answers, logs, metrics and alarms use these names.
STABLE, CANARY = "stable", "canary"


class NothingToUndo(ValueError):
    """A rollback with no canary running and no earlier served version."""


@dataclass(frozen=True)
class Canary:
    version: int
    percent: int  # of requests, 1 to 99 (the document's "share")


@dataclass(frozen=True)
class Pointer:
    """latest.json: the version readers serve, as a versioned document.

    ``revision`` counts the changes of the document: each writer reads the pointer with its
    ETag, writes revision + 1 only if the ETag is unchanged (If-Match; If-None-Match: * when
    there is none yet) and starts again from a fresh read if another writer got there first,
    so no change is lost and the revision never repeats. A pointer written before revisions
    existed reads as revision 0. ``extra`` keeps the fields this code does not know (a
    canary, a history) as they are, so an older writer never drops a newer one's fields.
    """

    version: int
    revision: int = 0
    updated_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    canary_refused: str | None = field(default=None, compare=False)  # why the canary was dropped

    KNOWN = ("name", "version", "revision", "manifest_key", "updated_at")

    @classmethod
    def parse(cls, data: bytes | str | dict) -> Pointer:
        """The pointer in a document (its bytes, or a dict already read), checked whole by the
        one validator (mlcore.documents: strict JSON, the published schema); a DocumentError
        (a ValueError) naming the field otherwise.

        One exception, so that a bad canary never stops the served version: when only the
        canary is wrong, the pointer is read without it and `canary_refused` says why (the
        function counts it, `make status` shows it)."""
        if isinstance(data, bytes | str):
            data = documents.loads(data, documents.POINTER)
        canary_refused = None
        try:
            documents.check(data, documents.POINTER)
        except documents.DocumentError as exc:
            if not (exc.problem.startswith("$.canary") and isinstance(data, dict)):
                raise
            data = {k: v for k, v in data.items() if k != "canary"}
            documents.check(data, documents.POINTER)  # the rest must hold on its own
            canary_refused = exc.problem
        extra = {k: v for k, v in data.items() if k not in cls.KNOWN}
        return cls(
            data["version"], data.get("revision", 0), data.get("updated_at"), extra, canary_refused
        )

    def moved_to(self, version: int, updated_at: str, files: dict | None = None) -> Pointer:
        """The next revision of this document, serving `version` (other fields kept; the
        version served until now goes to the history, which rollback returns to). files: the
        S3 object version ids of `version`'s files (None: those this pointer knows, if any)."""
        return self._next(version, updated_at, self.extra.get("canary"), files=files)

    # -- model rollouts: a canary and the history of served versions, in `extra` so that
    # writers that do not know them keep them ------------------------------------------------

    @functools.cached_property  # the document never changes; the function asks per request
    def canary(self) -> Canary | None:
        """The version getting a share of requests beside the served one, if any."""
        data = self.extra.get("canary")
        if not isinstance(data, dict):
            return None
        return Canary(check_version(data["version"]), check_share(data["share"]))

    @property
    def history(self) -> list[dict[str, Any]]:
        """Versions served before this one, oldest first: [{"version", "until", ...}]."""
        return [dict(item) for item in self.extra.get("history", ())]

    def object_versions(self, version: int) -> dict[str, str] | None:
        """The S3 object version ids this pointer recorded for `version`'s files (served,
        canary or history), or None: read by key (an unversioned bucket, an older pointer)."""
        if version == self.version:
            found = self.extra.get("object_versions")
        else:
            entries = [self.extra.get("canary") or {}, *reversed(self.history)]
            found = next(
                (e.get("object_versions") for e in entries if e.get("version") == version), None
            )
        return dict(found) if found else None

    def _next(
        self,
        version: int,
        updated_at: str,
        canary: dict[str, Any] | None,
        history: list[dict[str, Any]] | None = None,
        files: dict[str, str] | None = None,
    ) -> Pointer:
        version = check_version(version)
        files = files or self.object_versions(version)
        if history is None:
            history = self.history
            if version != self.version:
                served = {"version": self.version, "until": updated_at}
                if (known := self.object_versions(self.version)) is not None:
                    served["object_versions"] = known
                history = [*history, served]
        extra = {
            k: v for k, v in self.extra.items() if k not in ("canary", "history", "object_versions")
        }
        if files:
            extra["object_versions"] = dict(files)
        if canary is not None and canary["version"] != version:
            extra["canary"] = canary
        if history:
            extra["history"] = history[-HISTORY_LIMIT:]
        return Pointer(version, self.revision + 1, updated_at, extra)

    def moved_to_now(self, updated_at: str) -> Pointer:
        """This document again as the next revision (a repair restoring it), nothing else
        changed but the time."""
        return Pointer(self.version, self.revision + 1, updated_at, dict(self.extra))

    def with_canary(
        self, version: int, percent: int, updated_at: str, files: dict | None = None
    ) -> Pointer:
        """`version` gets `percent` (1 to 99) of requests; the served version stays. files: as
        for moved_to."""
        version, percent = check_version(version), check_share(percent)
        if version == self.version:
            raise ValueError(f"version {version} is already the served version")
        canary: dict[str, Any] = {"version": version, "share": percent}
        if files := files or self.object_versions(version):
            canary["object_versions"] = dict(files)
        return self._next(self.version, updated_at, canary)

    def promoted(self, version: int, updated_at: str, files: dict | None = None) -> Pointer:
        """`version` served to everyone; the canary (whatever it was) cleared."""
        return self._next(version, updated_at, canary=None, files=files)

    def rolled_back(self, updated_at: str) -> Pointer:
        """The canary cleared if one runs; else the previous served version (from the history)
        served again. NothingToUndo when there is neither."""
        if self.canary is not None:
            return self._next(self.version, updated_at, canary=None)
        history = self.history
        if not history:
            raise NothingToUndo(
                f"version {self.version} is served, no canary runs and the history holds no "
                "earlier version: nothing to roll back"
            )
        previous = history[-1]
        return self._next(
            previous["version"],
            updated_at,
            canary=None,
            history=history[:-1],
            files=previous.get("object_versions"),
        )

    @classmethod
    def first(cls, version: int, updated_at: str, files: dict | None = None) -> Pointer:
        """Revision 1: the document of a registry that had no pointer."""
        extra = {"object_versions": dict(files)} if files else {}
        return cls(check_version(version), 1, updated_at, extra)

    def document(self, registry: Registry) -> dict[str, Any]:
        return {
            **self.extra,
            "name": registry.name,
            "version": self.version,
            "revision": self.revision,
            "manifest_key": registry.manifest_key(self.version),
            "updated_at": self.updated_at,
        }
