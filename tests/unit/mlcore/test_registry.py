"""mlcore.registry: the one layout, name rule and pointer parser that training, the function and
bench share."""

import pytest

from mlcore.registry import MODEL_NAME_PATTERN, Pointer, Registry, check_model_name
from tests.sam_support import load_template


def test_layout_of_one_models_registry():
    registry = Registry("models/", "mnist")
    assert registry.pointer_key == "models/mnist/latest.json"
    assert registry.manifest_key(7) == "models/mnist/7/manifest.json"
    assert registry.model_key("7") == "models/mnist/7/model.tflite"
    assert registry.version_prefix(7) == "models/mnist/7/"
    assert Registry("", "mnist").pointer_key == "mnist/latest.json"


@pytest.mark.parametrize("name", ["mnist", "fashion.v2", "a_b-c", "9lives", "x" * 64])
def test_good_names(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../etc", "a b", "x" * 65, "é"])
def test_bad_names_state_the_rule(name):
    with pytest.raises(ValueError, match="letters, digits"):
        check_model_name(name)


def test_the_template_allows_exactly_the_same_names():
    parameter = load_template()["Parameters"]["ModelName"]
    assert parameter["AllowedPattern"] == MODEL_NAME_PATTERN


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "no 'version'"),
        ({"version": 0}, "positive integer"),
        ({"version": True}, "positive integer"),
        ({"version": "v3"}, "positive integer"),
    ],
)
def test_a_bad_pointer_says_what_is_wrong(document, problem):
    with pytest.raises(ValueError, match=problem):
        Pointer.parse(document)


def test_pointer_round_trip():
    registry = Registry("models", "mnist")
    document = Pointer(12).document(registry, "2026-11-30T00:00:00Z")
    assert Pointer.parse(document) == Pointer(12)
    assert document["manifest_key"] == "models/mnist/12/manifest.json"
