"""The one validator of the registry's documents (latest.json, manifest.json, signature.json):
every writer checks a document with it before writing, every reader after reading.

A document is hostile until it passes, and then it passes whole or not at all:
- JSON is parsed strictly (`loads`): no NaN, Infinity or number too large for a float (Python's
  json reads 1e400 as inf), no key twice in an object, no document beyond its size limit;
- the structure is the published JSON Schema's (mlcore/schemas/*.schema.json, docs/registry.md),
  run as code compiled ahead of time by fastjsonschema (mlcore/*_schema.py, `make schemas`):
  types are exact (a share is an integer, never "50", 50.9 or true), versions ASCII digits,
  shapes, label counts and sizes within the schema's limits;
- the rules a schema cannot state are checked here: every number finite (also in a document
  built in code, before it is written), every value_range low < high, a canary that is not the
  served version.

The library was chosen by measurement (bench/documents.py, docs/registry.md): import + one
pointer and one manifest validated in a fresh process.

Failures are `DocumentError` (a ValueError) whose message names the document and the field:
"latest.json: $.canary.share must be integer".
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlcore import manifest_schema, pointer_schema, signature_schema

POINTER, MANIFEST, SIGNATURE = "latest.json", "manifest.json", "signature.json"
# Bytes a document may have: far above what the publisher writes (a pointer ~1 KB with a full
# history, a manifest ~20 KB with 10,000 labels), far below what would cost a reader anything.
MAX_BYTES = {POINTER: 64 << 10, MANIFEST: 4 << 20, SIGNATURE: 8 << 10}

_VALIDATORS = {
    POINTER: pointer_schema.validate_urn_serverless_ml_registry_pointer_v1,
    MANIFEST: manifest_schema.validate_urn_serverless_ml_registry_manifest_v1,
    SIGNATURE: signature_schema.validate_urn_serverless_ml_registry_signature_v1,
}
# The manifest schema's oneOf, by schema_version: run the one branch it names, so that the
# message names the field ("$.input.shape[1] must be ...") and not only "no branch matched".
_MANIFEST_KINDS = {
    1: manifest_schema.validate___definitions_image_classifier,
    2: manifest_schema.validate___definitions_image_classifier,
    3: manifest_schema.validate___definitions_generic,
}


class DocumentError(ValueError):
    """A registry document refused whole; the message names the document and the field."""

    def __init__(self, document: str, problem: str):
        super().__init__(f"{document}: {problem}")
        self.document = document
        self.problem = problem


class NonFinite:
    """What `loads` reads for NaN, Infinity or a number beyond a float (1e400): never a number,
    so the document is refused with the field's path ("$.canary.share is 1e400: ...")."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text[:24]

    def __repr__(self) -> str:
        return self.text


def _float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice!r:.40} appears twice in an object")
    return document


def loads(raw: bytes | str, document: str) -> Any:
    """The JSON value of a document's bytes, strictly (see the module docstring); DocumentError
    otherwise. Validation is `check`'s."""
    if len(raw) > MAX_BYTES[document]:
        raise DocumentError(
            document, f"{len(raw):,} bytes, above its limit {MAX_BYTES[document]:,}"
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(
            text,
            parse_constant=NonFinite,
            parse_float=_float,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError:
        raise DocumentError(document, "is not UTF-8 text") from None
    except RecursionError:
        raise DocumentError(document, "nests too deep") from None
    except ValueError as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(document, f"is not strict JSON ({exc})") from None


def check(data: Any, document: str) -> Any:
    """`data` if it is a valid `document` (POINTER, MANIFEST or SIGNATURE), else DocumentError."""
    _finite(data, "$", document)
    validate = _VALIDATORS[document]
    if document == MANIFEST and isinstance(data, dict):
        version = data.get("schema_version")
        if type(version) is not int or version not in _MANIFEST_KINDS:
            allowed = ", ".join(map(str, _MANIFEST_KINDS))
            raise DocumentError(
                document, f"$.schema_version {version!r:.20} is not one of {allowed}"
            )
        validate = _MANIFEST_KINDS[version]
    try:
        validate(data)
    except ValueError as exc:  # the generated code's JsonSchemaValueException
        raise DocumentError(document, _field_message(str(exc))) from None
    if document == MANIFEST:
        _ranges_ordered(data, "$", document)
    elif document == POINTER:
        canary = data.get("canary")
        if canary is not None and canary["version"] == data["version"]:
            raise DocumentError(document, "$.canary.version is the served version")
    return data


def parse(raw: bytes | str, document: str) -> Any:
    """`loads` then `check`: the one call a reader makes."""
    return check(loads(raw, document), document)


def _field_message(message: str) -> str:
    """fastjsonschema says "data.canary.share must be integer": name the field as a JSON path."""
    return "$" + message[4:] if message.startswith("data") else message


def _finite(value: Any, path: str, document: str) -> None:
    if isinstance(value, float | NonFinite):
        if isinstance(value, NonFinite) or not math.isfinite(value):
            raise DocumentError(document, f"{path} is {value!r}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{path}.{key}", document)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(item, f"{path}[{index}]", document)


def _ranges_ordered(value: Any, path: str, document: str) -> None:
    """Every "value_range": [low, high] in the document has low < high (the schema states the
    pair of finite numbers; the order is stated here)."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "value_range" and isinstance(item, list) and len(item) == 2:
                low, high = item
                if not low < high:
                    raise DocumentError(document, f"{where} is [{low}, {high}]: low must be < high")
            _ranges_ordered(item, where, document)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _ranges_ordered(item, f"{path}[{index}]", document)
