"""mlcore.registry: the one layout, name rule and pointer parser that training, the function and
bench share."""

import pytest

from mlcore.registry import (
    HISTORY_LIMIT,
    MODEL_NAME_PATTERN,
    NothingToUndo,
    Pointer,
    Registry,
    check_model_name,
)
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
    # the canary kept as it was; the version served until now recorded for rollbacks
    assert document["canary"] == {"version": 13, "share": 10}
    assert document["history"] == [{"version": 12, "until": "2026-12-01T00:00:00Z"}]
    assert Pointer.parse({**newer, "other": [1]}).moved_to(14, "t").extra["other"] == [1]


def test_a_pointer_written_before_revisions_reads_as_revision_0():
    assert Pointer.parse({"version": 3, "manifest_key": "x"}).revision == 0


@pytest.mark.parametrize("revision", [-1, "2", True, 1.5])
def test_a_bad_revision_is_a_bad_pointer(revision):
    with pytest.raises(ValueError, match="revision"):
        Pointer.parse({"version": 3, "revision": revision})


# ------------------------------------------------------------------ canary, promote, rollback


def test_a_canary_runs_beside_the_served_version():
    pointer = Pointer.first(3, "t0").with_canary(4, 10, "t1")
    assert (pointer.version, pointer.revision) == (3, 2)
    assert pointer.canary.version == 4 and pointer.canary.percent == 10
    assert pointer.document(Registry("models", "mnist"))["canary"] == {"version": 4, "share": 10}
    assert pointer.history == []


@pytest.mark.parametrize("share", [0, 100, -5, 10.5, True, "10"])
def test_a_canary_share_is_a_percent_from_1_to_99(share):
    with pytest.raises(ValueError, match="1 to 99"):
        Pointer.first(3, "t0").with_canary(4, share, "t1")


def test_the_served_version_cannot_be_its_own_canary():
    with pytest.raises(ValueError, match="already the served version"):
        Pointer.first(3, "t0").with_canary(3, 10, "t1")


def test_promote_serves_the_version_clears_the_canary_and_records_history():
    pointer = Pointer.first(3, "t0").with_canary(4, 10, "t1").promoted(4, "t2")
    assert (pointer.version, pointer.canary, pointer.revision) == (4, None, 3)
    assert pointer.history == [{"version": 3, "until": "t2"}]


def test_rollback_clears_a_canary_first_then_returns_to_the_previous_version():
    pointer = Pointer.first(3, "t0").promoted(4, "t1").with_canary(5, 20, "t2")
    cleared = pointer.rolled_back("t3")
    assert (cleared.version, cleared.canary) == (4, None)
    assert cleared.history == [{"version": 3, "until": "t1"}]
    back = cleared.rolled_back("t4")
    assert (back.version, back.history, back.revision) == (3, [], 5)
    with pytest.raises(NothingToUndo, match="nothing to roll back"):
        back.rolled_back("t5")


def test_a_malformed_canary_or_history_is_ignored_by_readers():
    pointer = Pointer.parse(
        {"version": 3, "canary": {"version": "x", "share": 10}, "history": [{"v": 1}, 7]}
    )
    assert pointer.canary is None and pointer.history == []
    assert Pointer.parse({"version": 3, "canary": {"version": 3, "share": 10}}).canary is None
    assert Pointer.parse({"version": 3, "canary": {"version": 4, "share": 100}}).canary is None


def test_the_history_is_bounded():
    pointer = Pointer.first(1, "t")
    for version in range(2, 40):
        pointer = pointer.promoted(version, "t")
    assert len(pointer.history) == HISTORY_LIMIT
    assert pointer.history[-1]["version"] == 38
