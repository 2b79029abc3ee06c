"""The CloudWatch embedded metric format specification, as the tests hold EMF documents to it:
its published JSON schema (tests/fixtures/emf/, where it came from and when) and the rules of
the specification's text that a JSON schema cannot express."""

from __future__ import annotations

import functools
import json
import numbers
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).parent / "fixtures" / "emf" / "cloudwatch-emf-schema.json"
MAX_VALUES = 100  # "Numeric array metric targets MUST NOT have more than 100 members"
MAX_METRICS = 100  # a directive's Metrics "MUST NOT contain more than 100 MetricDefinition objects"
MAX_DIMENSION_VALUE = 1024  # a dimension target "MUST NOT contain more than 1024 characters"
MAX_DOCUMENT_BYTES = 256 * 1024  # the copied page's limit (the live page now says 1 MB)


@functools.cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def problems(line: str) -> list[str]:
    """What is wrong with one printed EMF document (an empty list: nothing)."""
    if len(line.encode()) > MAX_DOCUMENT_BYTES:
        return [f"{len(line.encode())} bytes, more than {MAX_DOCUMENT_BYTES}"]
    document = json.loads(line)
    found = [
        f"{'/'.join(map(str, error.absolute_path)) or 'root'}: {error.message}"
        for error in validator().iter_errors(document)
    ]
    if found or not isinstance(document, dict):
        return found
    for directive in document["_aws"]["CloudWatchMetrics"]:
        if len(directive["Metrics"]) > MAX_METRICS:
            found.append(f"{len(directive['Metrics'])} metrics in one directive")
        for dimension in {d for dimension_set in directive["Dimensions"] for d in dimension_set}:
            value = document.get(dimension)
            if not isinstance(value, str) or len(value) > MAX_DIMENSION_VALUE:
                found.append(f"dimension {dimension!r}: {value!r} is not a string of at most 1024")
        for metric in directive["Metrics"]:
            name, value = metric["Name"], document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            if not all(map(_is_number, values)) or len(values) > MAX_VALUES:
                found.append(f"metric {name!r}: {str(value)[:80]} is not a number or <=100 numbers")
    return found


def valid_records(stdout: str) -> list[dict[str, Any]]:
    """Every EMF document printed in `stdout`, each checked against the specification."""
    records = []
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            wrong = problems(line)
            assert not wrong, f"an EMF document CloudWatch would drop: {wrong}\n{line[:500]}"
            records.append(json.loads(line))
    return records
