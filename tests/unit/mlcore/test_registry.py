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
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_a_bad_pointer_says_what_is_wrong(document, problem):
    with pytest.raises(ValueError, match=problem):
        Pointer.parse(document)


def test_pointer_round_trip():
    registry = Registry("models", "mnist")
    document = Pointer.first(12, "2026-11-30T00:00:00Z").document(registry)
    assert Pointer.parse(document) == Pointer(12, revision=1, updated_at="2026-11-30T00:00:00Z")
    assert document["manifest_key"] == "models/mnist/12/manifest.json"
    assert document["revision"] == 1


def test_each_move_is_the_next_revision_and_keeps_fields_it_does_not_know():
    registry = Registry("models", "mnist")
    newer = {"version": 12, "revision": 4, "canary": {"version": 13, "share": 10}, "history": []}
    moved = Pointer.parse(newer).moved_to(14, "2026-12-01T00:00:00Z")
    assert (moved.version, moved.revision) == (14, 5)
    document = moved.document(registry)
    assert document["canary"] == {"version": 13, "share": 10} and document["history"] == []
    assert Pointer.parse(document).extra == {"canary": {"version": 13, "share": 10}, "history": []}


def test_a_pointer_written_before_revisions_reads_as_revision_0():
    assert Pointer.parse({"version": 3, "manifest_key": "x"}).revision == 0


@pytest.mark.parametrize("revision", [-1, "2", True, 1.5])
def test_a_bad_revision_is_a_bad_pointer(revision):
    with pytest.raises(ValueError, match="revision"):
        Pointer.parse({"version": 3, "revision": revision})
