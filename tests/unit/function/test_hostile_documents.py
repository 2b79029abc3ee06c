"""The manifest and the signature document the function reads, as hostile input: any JSON value
in any field either reads as a valid document or is refused with a ValueError (the version is
then refused, and the function keeps serving its last good state), never another exception.
The pointer's property is in tests/unit/mlcore/test_registry.py."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.images import InputSpec
from mlcore.registry import SIGNATURE_ALGORITHM, read_signature
from model_store import check_manifest
from tests.function_support import FakeS3, fixture_manifest, fixture_model
from tests.hostile_json import JSON_VALUES, places, with_value

MANIFEST = fixture_manifest()
VERSION = MANIFEST["version"]


def assert_a_usable_manifest(expected: dict, manifest: dict) -> None:
    assert type(expected["size"]) is int and expected["size"] >= 0
    assert len(expected["sha256"]) == 64 and int(expected["sha256"], 16) >= 0
    spec = InputSpec.from_manifest(manifest)
    assert min(spec.height, spec.width) >= 1 and spec.channels in (1, 3)
    assert math.isfinite(spec.low) and math.isfinite(spec.high) and spec.low < spec.high
    assert isinstance(manifest["labels"], list) and manifest["labels"]


@settings(max_examples=400, deadline=None)
@given(place=st.sampled_from(places(MANIFEST)), value=JSON_VALUES, as_text=st.booleans())
def test_any_json_value_in_any_manifest_field_reads_as_usable_or_a_value_error(
    place, value, as_text
):
    manifest = with_value(MANIFEST, place, value)
    if as_text:  # as the function reads it: Python's json reads NaN, Infinity and 1e400
        manifest = json.loads(json.dumps(manifest))
    try:
        expected = check_manifest(manifest, "mnist", VERSION)
    except ValueError:
        return
    assert_a_usable_manifest(expected, manifest)


@settings(max_examples=200, deadline=None)
@given(document=JSON_VALUES)
def test_any_json_value_as_the_manifest_reads_as_usable_or_a_value_error(document):
    try:
        check_manifest(document, "mnist", VERSION)
    except ValueError:
        return
    raise AssertionError(f"{document!r} was read as a manifest")


@pytest.mark.parametrize(
    ("place", "value", "problem"),
    [
        (("files", "model.tflite", "size"), float("inf"), "size inf is not an integer"),
        (("files", "model.tflite", "size"), "18984", "size '18984' is not an integer"),
        (("files", "model.tflite", "size"), -1, "size -1 is not an integer >= 0"),
        (("files", "model.tflite", "sha256"), "ab", "sha256 'ab' is not 64 hex digits"),
        (("version",), float(VERSION), "version"),
        (("version",), str(VERSION), "version"),
        (("schema_version",), True, "schema_version True"),
        (("input", "value_range"), [float("nan"), float("nan")], "value_range"),
        (("input", "value_range"), [255, 0], "value_range"),
        (("input", "value_range"), [0, 10**400], "value_range"),
        (("input", "value_range"), "09", "value_range"),
        (("input", "shape"), [1, 28.0, 28, 1], "input shape"),
        (("input", "shape"), [1, 0, 28, 1], "input shape"),
        (("input", "shape"), "1281", "input shape"),
        (("input", "color"), ["grey"], "input color"),
        (("input", "preprocessing"), ["digit"], "input preprocessing"),
        (("labels",), "0123456789", "no labels"),
        (("labels",), [], "no labels"),
    ],
    ids=[
        "size-inf",
        "size-text",
        "size-negative",
        "sha256-short",
        "version-float",
        "version-text",
        "schema-true",
        "range-nan",
        "range-reversed",
        "range-huge-int",
        "range-text",
        "shape-float",
        "shape-zero",
        "shape-text",
        "color-list",
        "preprocessing-list",
        "labels-text",
        "labels-empty",
    ],
)
def test_what_each_hostile_manifest_field_is_refused_for(place, value, problem):
    with pytest.raises(ValueError, match=problem):
        check_manifest(with_value(MANIFEST, place, value), "mnist", VERSION)


def test_a_usable_manifests_file_expectation_is_read_as_written():
    sha256 = MANIFEST["files"]["model.tflite"]["sha256"]
    shouting = with_value(MANIFEST, ("files", "model.tflite", "sha256"), sha256.upper())
    assert check_manifest(shouting, "mnist", VERSION) == {
        "size": MANIFEST["files"]["model.tflite"]["size"],
        "sha256": sha256,
    }
    with pytest.raises(ValueError, match="describes 'mnist' version"):
        check_manifest(MANIFEST, "mnist", VERSION + 1)
    with pytest.raises(ValueError, match="describes 'mnist' version"):
        check_manifest(MANIFEST, "fashion", VERSION)


def test_a_manifest_with_an_infinite_size_refuses_its_version_for_good(make_store):
    """size 1e400 raised OverflowError, which the store took for an unreadable registry and
    retried for ever; now the version is refused with the reason."""
    manifest = with_value(MANIFEST, ("files", "model.tflite", "size"), "SIZE")
    s3 = FakeS3()
    s3.publish(manifest, fixture_model())
    key = f"models/mnist/{VERSION}/manifest.json"
    s3.objects[key] = s3.objects[key].replace(b'"SIZE"', b"1e400")
    store = make_store(s3)
    with pytest.raises(Exception, match="was refused"):
        store.get()
    assert "size inf is not an integer" in store.refused[VERSION]


SIGNATURE = {
    "algorithm": SIGNATURE_ALGORITHM,
    "key_id": "arn:aws:kms:us-east-1:111122223333:key/x",
    "statement": {"manifest_sha256": "0" * 64, "name": "mnist", "version": 1},
    "signature": base64.b64encode(bytes(range(256))).decode(),
}


@settings(max_examples=300, deadline=None)
@given(place=st.sampled_from(places(SIGNATURE)), value=JSON_VALUES)
def test_any_json_value_in_the_signature_document_reads_as_bytes_or_a_value_error(place, value):
    try:
        signature = read_signature(with_value(SIGNATURE, place, value))
    except ValueError:
        return
    assert isinstance(signature, bytes)


@settings(max_examples=100, deadline=None)
@given(document=JSON_VALUES)
def test_any_json_value_as_the_signature_document_is_refused(document):
    with pytest.raises(ValueError):
        read_signature(document)


def test_the_signature_document_gives_the_exact_signature_bytes():
    assert read_signature(SIGNATURE) == bytes(range(256))
    with pytest.raises(ValueError, match="not base64"):
        read_signature({**SIGNATURE, "signature": "AAA="[:3] + "!"})
    with pytest.raises(ValueError, match="algorithm 'RSASSA_PSS_SHA_256', not RSASSA_PKCS1"):
        read_signature({**SIGNATURE, "algorithm": "RSASSA_PSS_SHA_256"})
