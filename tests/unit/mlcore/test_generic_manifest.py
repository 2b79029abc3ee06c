"""mlcore.generic: a generic model's manifest, refused whole for anything it does not state,
with a ValueError naming the field (registry documents are hostile until read)."""

from __future__ import annotations

import copy
import json

import pytest

from mlcore import generic
from tests.function_support import generic_model

MANIFEST, _ = generic_model("pair-int8.tflite", "pair", labels=True)


def test_the_publishers_manifest_reads_back():
    parsed = generic.parse(MANIFEST)
    assert (parsed.name, parsed.default_signature, parsed.label_output) == (
        "pair",
        "serving_default",
        "classes",
    )
    assert parsed.labels == ("north", "east", "south", "west")
    features = parsed.default.input("features")
    assert (features.dtype, features.shape, features.quantized) == ("int8", (-1, 6), True)
    low, high = features.value_range  # the range its quantization holds
    assert low < -1.9 and high > 1.9
    assert generic.kind_of(MANIFEST) == "generic"
    assert generic.kind_of({"schema_version": 2}) == "image_classifier"


def changed(path: str, value) -> dict:
    """MANIFEST with the field at a dotted path set (value ... deletes it)."""
    document = copy.deepcopy(MANIFEST)
    *parents, last = path.split("/")
    node = document
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


SIGNATURE = "signatures/serving_default"
FEATURES = f"{SIGNATURE}/inputs/features"


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("schema_version", 2, "schema_version"),
        ("schema_version", True, "schema_version"),
        ("kind", "image_classifier", "kind"),
        ("name", "../etc", "manifest.name"),
        ("version", 0, "version"),
        ("version", "7", "version"),
        ("version", 1.5, "version"),
        ("created_at", "yesterday", "created_at"),
        ("extra", 1, "unknown field 'extra'"),
        ("files", ..., "missing field 'files'"),
        ("files/model.tflite/size", -1, "size"),
        ("files/model.tflite/size", float("inf"), "size"),
        ("files/model.tflite/sha256", "ABC", "sha256"),
        ("files/other.bin", {"sha256": "0" * 64, "size": 1}, "unknown field 'other.bin'"),
        ("default_signature", "encode", "default_signature"),
        ("signatures", {}, "signatures"),
        (f"{FEATURES}/dtype", "string", "dtype"),
        (f"{FEATURES}/shape", [-1, 0], "shape"),
        (f"{FEATURES}/shape", [-1, 6.0], "shape"),
        (f"{FEATURES}/shape", [1] * 9, "shape"),
        (f"{FEATURES}/shape", [-2, 6], "shape"),
        (f"{FEATURES}/quantization/scale", float("nan"), "scale"),
        (f"{FEATURES}/quantization/scale", -1.0, "scale"),
        (f"{FEATURES}/quantization/zero_point", 300, "zero_point"),
        (f"{FEATURES}/value_range", [1.0, -1.0], "value_range"),
        (f"{FEATURES}/value_range", [float("-inf"), 1.0], "value_range"),
        (f"{FEATURES}/value_range", [-100.0, 100.0], "outside what the quantization holds"),
        (f"{FEATURES}/colour", "red", "unknown field 'colour'"),
        (f"{SIGNATURE}/outputs/score/value_range", [0, 1], "unknown field 'value_range'"),
        ("labels", [], "labels"),
        ("labels", ["a", 3, "c", "d"], "labels"),
        ("labels", ["a", "b"], "one entry per label"),
        ("label_output", "score", "one entry per label"),
        ("label_output", "nothing", "label_output"),
        ("label_output", ..., "together"),
    ],
)
def test_a_document_is_refused_whole_naming_the_field(path, value, named):
    with pytest.raises(ValueError) as raised:
        generic.parse(changed(path, value))
    assert named in str(raised.value)


def test_non_finite_numbers_from_json_are_refused():
    # Python's json reads NaN and 1e400 (infinity); the parser must not accept either
    for poison in ("NaN", "1e400"):
        text = json.dumps(changed(f"{FEATURES}/quantization/scale", 12345.5))
        with pytest.raises(ValueError, match="scale"):
            generic.parse(json.loads(text.replace("12345.5", poison)))


def test_build_refuses_what_parse_would_refuse():
    parsed = generic.parse(MANIFEST)
    with pytest.raises(ValueError):
        generic.build(
            name="bad name",
            version=1,
            created_at="2026-12-06T00:00:00Z",
            framework={},
            source={"file": "x.tflite", "sha256": "0" * 64},
            signatures=parsed.signatures,
            default_signature="serving_default",
            files=MANIFEST["files"],
        )
