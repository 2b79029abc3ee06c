"""The one validator of the registry's documents (mlcore.documents) against the published
schemas (mlcore/schemas/); tests/unit/local/test_make_schemas.py holds its generated code
to what `make schemas` gives."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mlcore import documents
from mlcore.documents import MANIFEST, POINTER, SIGNATURE

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"


def manifest() -> dict:
    return json.loads((FIXTURES / "mnist" / "manifest.json").read_text())


def test_the_committed_manifests_are_valid():
    for folder in ("mnist", "mnist-schema1"):
        raw = (FIXTURES / folder / "manifest.json").read_bytes()
        assert documents.parse(raw, MANIFEST)["name"] == "mnist"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"version": 1, "revision": 1e400}', "$.revision is 1e400: numbers must be finite"),
        (b'{"version": NaN}', "$.version is NaN: numbers must be finite"),
        (b'{"version": -Infinity}', "$.version is -Infinity: numbers must be finite"),
        (b'{"version": 1, "version": 2}', "key 'version' appears twice"),
        (b'{"version": 50.0}', "$.version must be integer"),
        (b'{"version": "12"}', "$.version must be integer"),
        (b'{"version": true}', "$.version must be integer"),
        (b"\xff", "is not UTF-8 text"),
        (b"{", "is not strict JSON"),
    ],
)
def test_a_hostile_pointer_is_refused_naming_the_field(raw, message):
    with pytest.raises(documents.DocumentError) as error:
        documents.parse(raw, POINTER)
    assert message in str(error.value) and str(error.value).startswith("latest.json: ")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("input", "value_range"), [float("nan"), float("nan")], "$.input.value_range[0] is nan"),
        (("input", "value_range"), [255, 0], "$.input.value_range is [255, 0]: low must be < high"),
        (("input", "value_range"), [1, 1], "low must be < high"),
        (("input", "shape"), [-1, 28, 28, 2], "$.input.shape[3]"),
        (("input", "shape"), [-1, 100000, 28, 1], "$.input.shape[1]"),
        (("files", "model.tflite", "size"), "1000", "$.files.model.tflite.size must be integer"),
        (("files", "model.tflite", "sha256"), "x" * 64, "$.files.model.tflite.sha256"),
        (("labels",), [], "$.labels"),
        (("labels",), [str(i) for i in range(100_001)], "$.labels"),
        (("version",), 1.5, "$.version must be integer"),
        (("schema_version",), 9, "$.schema_version 9 is not one of 1, 2, 3"),
    ],
)
def test_a_hostile_manifest_is_refused_naming_the_field(path, value, message):
    document = manifest()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(documents.DocumentError) as error:
        documents.check(document, MANIFEST)
    assert message in str(error.value) and error.value.document == MANIFEST


def test_a_document_built_in_code_is_checked_for_non_finite_numbers_too():
    document = manifest()
    document["baseline"] = {"nested": [1.0, float("inf")]}
    with pytest.raises(documents.DocumentError, match=r"\$.baseline"):
        documents.check(document, MANIFEST)


def test_size_limits_are_checked_before_parsing():
    with pytest.raises(documents.DocumentError, match="above its limit"):
        documents.loads(b" " * (documents.MAX_BYTES[SIGNATURE] + 1), SIGNATURE)


def test_a_valid_document_is_returned_unchanged():
    document = manifest()
    assert documents.check(copy.deepcopy(document), MANIFEST) == document


def test_a_refusal_names_its_document_and_field_apart_and_bounds_a_huge_number():
    # callers read .problem (the pointer drops only a bad canary by it) and .document; a
    # number of 400 digits is quoted by its first 24 characters, never whole
    with pytest.raises(documents.DocumentError) as error:
        documents.parse(b'{"version": 1, "revision": 1' + b"0" * 400 + b".5}", POINTER)
    assert (error.value.document, error.value.problem) == (
        POINTER,
        f"$.revision is 1{'0' * 23}: numbers must be finite",
    )


def test_every_value_range_is_ordered_wherever_it_is_and_only_value_ranges():
    # informative records (evaluation, training ...) may hold anything: a value_range there,
    # even in a list, follows the same rule; any other pair of numbers keeps its order
    document = manifest()
    document["evaluation"] = {"runs": [{"value_range": [0, 1]}, {"value_range": [2, 1]}]}
    with pytest.raises(documents.DocumentError) as error:
        documents.check(document, MANIFEST)
    assert (error.value.document, error.value.problem) == (
        MANIFEST,
        "$.evaluation.runs[1].value_range is [2, 1]: low must be < high",
    )
    document["evaluation"] = {"confusion": [5, 3], "runs": [[9, 2]]}
    assert documents.check(document, MANIFEST) is document


def test_the_key_that_appears_twice_is_the_one_named():
    with pytest.raises(documents.DocumentError, match="key 'revision' appears twice"):
        documents.loads(b'{"version": 1, "revision": 1, "revision": 2}', POINTER)


def test_a_document_of_exactly_its_size_limit_is_read_one_byte_more_is_not():
    body = b'{"version": 1}'
    limit = documents.MAX_BYTES[POINTER]
    assert documents.loads(body + b" " * (limit - len(body)), POINTER) == {"version": 1}
    with pytest.raises(documents.DocumentError) as error:
        documents.loads(body + b" " * (limit - len(body) + 1), POINTER)
    assert error.value.document == POINTER
    assert str(error.value) == f"latest.json: {limit + 1:,} bytes, above its limit {limit:,}"


@pytest.mark.parametrize(
    "raw",
    [
        '{"version": 1}'.encode("utf-16"),  # json.loads would guess the encoding of bytes
        b'\xef\xbb\xbf{"version": 1}',  # a byte order mark
    ],
    ids=["utf-16", "utf-8-bom"],
)
def test_a_document_is_utf_8_text_without_a_byte_order_mark(raw):
    with pytest.raises(documents.DocumentError) as error:
        documents.loads(raw, POINTER)
    assert str(error.value).startswith("latest.json: is not")


def test_a_document_nested_too_deep_is_refused_as_such():
    with pytest.raises(documents.DocumentError) as error:
        documents.loads(b"[" * 30000 + b"]" * 30000, POINTER)
    assert str(error.value) == "latest.json: nests too deep"


def test_a_canary_of_the_served_version_is_refused_naming_the_pointer():
    with pytest.raises(documents.DocumentError) as error:
        documents.check({"version": 3, "canary": {"version": 3, "share": 10}}, POINTER)
    assert str(error.value) == "latest.json: $.canary.version is the served version"
    assert error.value.document == POINTER
