"""mlcore.registry: the one layout, name rule and pointer parser that training, the function and
bench share."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.registry import (
    HISTORY_LIMIT,
    MODEL_NAME_PATTERN,
    SIGNATURE_ALGORITHM,
    Canary,
    NothingToUndo,
    Pointer,
    Registry,
    check_model_name,
    check_version,
    read_signature,
    signed_statement,
)
from tests.hostile_json import JSON_VALUES, places, with_value
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
        (b"not json", "not strict JSON"),
        (b"[1]", r"\$ must be object"),
        ({"version": 0}, r"\$.version must be bigger than or equal to 1"),
        ({"version": True}, r"\$.version must be integer"),
        ({"version": "v3"}, r"\$.version must be integer"),
        (b"[" * 100_000, "above its limit"),
        (b"[" * 60_000, "nests too deep"),
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
    # what the schema names is checked even there
    with pytest.raises(ValueError, match=r"\$.history\[0\] must contain \['version'\]"):
        Pointer.parse({**newer, "history": [{"until": "t"}]})


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


def test_a_malformed_canary_is_dropped_with_its_reason_and_a_malformed_history_refused():
    pointer = Pointer.parse({"version": 3, "canary": {"version": "x", "share": 10}})
    assert pointer.canary is None and pointer.canary_refused == "$.canary.version must be integer"
    pointer = Pointer.parse({"version": 3, "canary": {"version": 3, "share": 10}})
    assert (pointer.canary, pointer.canary_refused) == (
        None,
        "$.canary.version is the served version",
    )
    assert Pointer.parse({"version": 3, "canary": {"version": 4, "share": 100}}).canary is None
    assert (
        Pointer.parse({"version": 3, "canary": {"version": 4, "share": 5}}).canary_refused is None
    )
    with pytest.raises(ValueError, match=r"latest.json: \$.history\[1\] must be object"):
        Pointer.parse({"version": 3, "history": [{"version": 1}, 7]})


def test_the_history_is_bounded():
    pointer = Pointer.first(1, "t")
    for version in range(2, 40):
        pointer = pointer.promoted(version, "t")
    assert len(pointer.history) == HISTORY_LIMIT
    assert pointer.history[-1]["version"] == 38


# ------------------------------------------------------------------ what mutation testing found
# (mutation/SUMMARY.md): behaviour users rely on that no test pinned


def test_a_pointer_document_without_a_version_is_refused_as_such():
    with pytest.raises(ValueError, match=r"latest.json: \$ must contain \['version'\]"):
        Pointer.parse({"revision": 3, "canary": {"version": 4, "share": 10}})


def test_a_pointer_from_bytes_or_text_reads_the_same():
    text = '{"version": 12, "revision": 3, "updated_at": "t", "history": []}'
    assert Pointer.parse(text) == Pointer.parse(text.encode()) == Pointer(12, 3, "t")
    with pytest.raises(ValueError, match=r"\$.updated_at must be string or null"):
        Pointer.parse({"version": 12, "updated_at": 5})


@pytest.mark.parametrize(
    "version",
    ["١٢", "１２", "²", " 12", "12 ", "+12", "1_000", 12.0],
    ids=[
        "arabic-indic",
        "fullwidth",
        "superscript",
        "space-first",
        "space-last",
        "plus",
        "1_000",
        "float",
    ],
)
def test_a_version_is_ascii_digits_never_coerced(version):
    with pytest.raises(ValueError, match="positive integer"):
        check_version(version)
    with pytest.raises(ValueError, match=r"latest.json: \$.version must be integer"):
        Pointer.parse({"version": version})


@pytest.mark.parametrize("share", [1, 99])
def test_the_canary_share_boundaries_are_served_and_written(share):
    registry = Registry("models", "mnist")
    written = Pointer.first(3, "t0").with_canary(4, share, "t1")
    assert written.document(registry)["canary"] == {"version": 4, "share": share}
    read = Pointer.parse(json.dumps(written.document(registry)))
    assert (read.canary.version, read.canary.percent) == (4, share)


# The fault probe's pointer (issue 25): 1e400 is valid JSON that Python reads as inf, and
# int(inf) raised OverflowError in every request's canary lookup.
HOSTILE_SHARES = {  # test id: (the share's JSON token, what the writer is given)
    "1e400": ("1e400", float("inf")),
    "minus-1e400": ("-1e400", float("-inf")),
    "Infinity": ("Infinity", float("inf")),
    "NaN": ("NaN", None),
    "text-50": ('"50"', "50"),
    "50.9": ("50.9", 50.9),
    "50.0": ("50.0", 50.0),
    "true": ("true", True),
    "0": ("0", 0),
    "100": ("100", 100),
    "arabic-indic-50": ('"٥٠"', "٥٠"),
    "null": ("null", None),
    "list": ("[50]", [50]),
    "object": ('{"percent": 50}', {"percent": 50}),
}


@pytest.mark.parametrize(("token", "share"), HOSTILE_SHARES.values(), ids=HOSTILE_SHARES.keys())
def test_a_hostile_canary_share_counts_as_no_canary_and_is_never_written(token, share):
    text = '{"version": 3, "revision": 2, "canary": {"version": 4, "share": ' + token + "}}"
    pointer = Pointer.parse(text)
    assert (pointer.version, pointer.canary) == (3, None)  # the stable version serves
    assert pointer.canary_refused.startswith("$.canary")  # and says why the canary is not
    with pytest.raises(ValueError, match="1 to 99"):
        Pointer.first(3, "t0").with_canary(4, share, "t1")


@pytest.mark.parametrize(
    "version",
    ["١٢", 4.0, True, "4.5", float("inf"), None, [4]],
    ids=["arabic-indic", "float", "true", "text-float", "inf", "null", "list"],
)
def test_a_canary_of_a_hostile_version_counts_as_none(version):
    assert Pointer.parse({"version": 3, "canary": {"version": version, "share": 10}}).canary is None


def test_every_pointer_change_records_when_it_was_made():
    first = Pointer.first(3, "t0")
    assert first.updated_at == "t0"
    steps = [
        first.moved_to(4, "t1"),
        first.with_canary(5, 10, "t2"),
        first.with_canary(5, 10, "t2").promoted(5, "t3"),
        first.promoted(4, "t4").rolled_back("t5"),
        first.with_canary(5, 10, "t2").rolled_back("t6"),
    ]
    registry = Registry("models", "mnist")
    for pointer, expected in zip(steps, ["t1", "t2", "t3", "t5", "t6"], strict=True):
        assert pointer.updated_at == expected
        assert Pointer.parse(pointer.document(registry)).updated_at == expected


def test_a_move_to_the_served_version_adds_nothing_to_the_history():
    pointer = Pointer.first(3, "t0").promoted(4, "t1")
    again = pointer.moved_to(4, "t2")
    assert again.history == pointer.history == [{"version": 3, "until": "t1"}]
    assert again.revision == pointer.revision + 1


def test_rollback_walks_back_through_every_served_version():
    pointer = Pointer.first(1, "t")
    for version in (2, 3, 4):
        pointer = pointer.promoted(version, f"t{version}")
    served = []
    while True:
        try:
            pointer = pointer.rolled_back("later")
        except NothingToUndo:
            break
        served.append(pointer.version)
        assert [entry["version"] for entry in pointer.history] == list(range(1, pointer.version))
    assert served == [3, 2, 1]
    with pytest.raises(NothingToUndo) as nothing:
        pointer.rolled_back("later")
    assert str(nothing.value) == (
        "version 1 is served, no canary runs and the history holds no earlier version: "
        "nothing to roll back"
    )


def test_a_history_is_read_whole_with_the_object_versions_it_recorded():
    history = [
        {"version": 1, "until": "a"},
        {
            "version": 2,
            "until": "b",
            "object_versions": {"manifest.json": "m2", "model.tflite": "f2"},
        },
        {"version": 3},
    ]
    pointer = Pointer.parse({"version": 4, "history": history})
    assert pointer.history == history
    back = pointer.rolled_back("t").rolled_back("u")
    assert back.version == 2
    assert back.object_versions(2) == {"manifest.json": "m2", "model.tflite": "f2"}
    assert pointer.object_versions(1) is None and pointer.object_versions(4) is None
    with pytest.raises(ValueError, match=r"\$.history must be array"):
        Pointer.parse({"version": 4, "history": {"version": 1}})


def _files(version):
    """S3 object version ids of one version's files, as the publisher records them."""
    return {"manifest.json": f"m{version}", "model.tflite": f"f{version}"}


def test_every_pointer_change_keeps_the_object_versions_readers_fetch_by():
    # Readers fetch exactly these S3 objects: a version must never be read with another
    # version's ids, and no change may lose the ids of a version it still names.
    registry = Registry("models", "mnist")

    def written(pointer):  # what a reader gets back from the published document
        return Pointer.parse(pointer.document(registry))

    first = written(Pointer.first(1, "t0", files=_files(1)))
    assert first.object_versions(1) == _files(1)
    assert "object_versions" not in Pointer.first(1, "t0").document(registry)

    moved = written(first.moved_to(2, "t1", files=_files(2)))
    assert moved.object_versions(2) == _files(2)
    assert moved.history == [{"version": 1, "until": "t1", "object_versions": _files(1)}]

    # a canary records its own files; the served version keeps its files beside it
    canary = written(moved.with_canary(3, 10, "t2", files=_files(3)))
    assert (canary.object_versions(3), canary.object_versions(2)) == (_files(3), _files(2))
    promoted = written(canary.promoted(3, "t3"))
    assert promoted.object_versions(3) == _files(3)
    assert written(canary.promoted(3, "t3", files=_files(30))).object_versions(3) == _files(30)
    assert written(moved.promoted(4, "t3", files=_files(4))).object_versions(4) == _files(4)

    # a canary of a version served before takes the files the history recorded for it
    again = written(moved.with_canary(1, 5, "t4"))
    assert again.extra["canary"] == {"version": 1, "share": 5, "object_versions": _files(1)}

    # a move to a version whose files are not known reads by key: no other version's ids
    unknown = written(moved.moved_to(7, "t5"))
    assert unknown.object_versions(7) is None
    assert "object_versions" not in unknown.document(registry)
    assert unknown.history[-1] == {"version": 2, "until": "t5", "object_versions": _files(2)}

    back = written(promoted.rolled_back("t6"))
    assert (back.version, back.object_versions(2)) == (2, _files(2))


def test_a_repair_writes_the_restored_document_again_as_the_next_revision():
    # `rollout --repair`: the last valid pointer of the audit trail, written again as it was
    restored = Pointer.parse(
        {
            "version": 4,
            "revision": 7,
            "updated_at": "t0",
            "object_versions": _files(4),
            "canary": {"version": 5, "share": 10},
            "history": [{"version": 3, "until": "t0"}],
            "written_by": "a newer tool",
        }
    )
    repaired = restored.moved_to_now("t9")
    assert (repaired.version, repaired.revision, repaired.updated_at) == (4, 8, "t9")
    assert repaired.extra == restored.extra
    assert repaired.extra is not restored.extra  # a copy: the restored pointer is unchanged
    registry = Registry("models", "mnist")
    assert Pointer.parse(repaired.document(registry)).canary == Canary(5, 10)


def test_a_canary_survives_a_move_of_the_served_version():
    pointer = Pointer.first(3, "t0").with_canary(5, 10, "t1").moved_to(4, "t2")
    assert (pointer.version, pointer.canary.version, pointer.canary.percent) == (4, 5, 10)


def test_a_published_pointer_document_names_its_registry_keys():
    registry = Registry("/models/", "mnist")
    assert registry.prefix == "models" and registry.root == "models/mnist"
    assert Registry("/X/", "mnist").prefix == "X"  # only slashes are trimmed
    document = Pointer(7, 2, "t", {"other": 1}).document(registry)
    assert document == {
        "other": 1,
        "name": "mnist",
        "version": 7,
        "revision": 2,
        "manifest_key": "models/mnist/7/manifest.json",
        "updated_at": "t",
    }
    with pytest.raises(ValueError, match="model name"):
        Registry("models", "../x")


def test_the_signed_statement_is_these_exact_bytes():
    """What KMS signed for every version already in S3: a change to the keys, their order or
    the separators would invalidate every stored signature. Written out, not built."""
    statement = signed_statement("mnist", 1764979200, "0123456789abcdef" * 4)
    assert statement == (
        b'{"manifest_sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",'
        b'"name":"mnist","version":1764979200}'
    )
    assert SIGNATURE_ALGORITHM == "RSASSA_PKCS1_V1_5_SHA_256"
    assert (
        signed_statement("ünï", 1, "")
        == b'{"manifest_sha256":"","name":"\\u00fcn\\u00ef","version":1}'
    )


# ------------------------------------------------------------------ properties over hostile input
# Any JSON value in any field of a pointer either reads as a valid pointer or is refused with a
# ValueError, never another exception: the function keeps serving its last good state.

GOOD_POINTER = {
    "name": "mnist",
    "version": 12,
    "revision": 3,
    "manifest_key": "models/mnist/12/manifest.json",
    "updated_at": "2026-12-06T00:00:00Z",
    "canary": {"version": 13, "share": 10},
    "history": [{"version": 10, "until": "a"}, {"version": 11, "until": "b"}],
}


def assert_a_valid_pointer(pointer: Pointer) -> None:
    assert type(pointer.version) is int and pointer.version > 0
    assert type(pointer.revision) is int and pointer.revision >= 0
    assert pointer.updated_at is None or isinstance(pointer.updated_at, str)
    canary = pointer.canary
    if canary is not None:
        assert type(canary.version) is int and canary.version > 0
        assert type(canary.percent) is int and 1 <= canary.percent <= 99
        assert canary.version != pointer.version
    for entry in pointer.history:
        assert type(entry["version"]) is int and entry["version"] > 0


@settings(max_examples=300, deadline=None)
@given(place=st.sampled_from(places(GOOD_POINTER)), value=JSON_VALUES, as_text=st.booleans())
def test_any_json_value_in_any_pointer_field_reads_as_a_valid_pointer_or_a_value_error(
    place, value, as_text
):
    document = with_value(GOOD_POINTER, place, value)
    try:
        # as text: Python's json writes NaN and inf as NaN and Infinity, which it reads back
        pointer = Pointer.parse(json.dumps(document) if as_text else document)
    except ValueError:
        return
    assert_a_valid_pointer(pointer)
    # and every rollout command can move it on
    assert_a_valid_pointer(pointer.promoted(14, "t"))
    if pointer.canary is not None or pointer.history:
        assert_a_valid_pointer(pointer.rolled_back("t"))


@settings(max_examples=200, deadline=None)
@given(version=JSON_VALUES, share=JSON_VALUES)
def test_a_canary_is_written_only_with_a_valid_version_and_share(version, share):
    try:
        pointer = Pointer.first(3, "t0").with_canary(version, share, "t1")
    except ValueError:
        return
    assert_a_valid_pointer(pointer)
    assert pointer.canary == Canary(check_version(version), share)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"\xff", "latest.json: is not UTF-8 text"),
        (b"[1]", "latest.json: $ must be object"),
        ({"version": "v3"}, "latest.json: $.version must be integer"),
        (
            {"version": 3, "revision": -1},
            "latest.json: $.revision must be bigger than or equal to 0",
        ),
    ],
    ids=["not-utf8", "no-version", "text-version", "negative-revision"],
)
def test_a_bad_pointers_message_names_the_file_and_the_field(document, message):
    with pytest.raises(ValueError) as error:
        Pointer.parse(document)
    assert str(error.value) == message


def test_hostile_shares_and_signatures_are_named_in_the_message():
    with pytest.raises(ValueError) as error:
        Pointer.first(3, "t").with_canary(4, 1e400, "t")
    assert str(error.value) == "canary share inf: an integer percent from 1 to 99"
    base64_rule = r"signature.json: \$.signature must match pattern \^\(\?:\[A-Za-z0-9\+/\]\{4\}\)"
    with pytest.raises(ValueError, match=base64_rule):
        read_signature({"algorithm": SIGNATURE_ALGORITHM, "signature": "é" * 100})
    with pytest.raises(ValueError) as error:
        read_signature([])
    assert str(error.value) == "signature.json: $ must be object"
    with pytest.raises(ValueError, match=r"^signature.json: \$ must contain \['algorithm'\]$"):
        read_signature({"signature": "AAAA"})
    with pytest.raises(ValueError, match=r"\$ must contain \['signature'\]"):
        read_signature({"algorithm": SIGNATURE_ALGORITHM})
    with pytest.raises(ValueError, match=base64_rule):  # refused, not cleaned of the junk
        read_signature({"algorithm": SIGNATURE_ALGORITHM, "signature": "AAAA!!"})
    assert read_signature({"algorithm": SIGNATURE_ALGORITHM, "signature": "AAAA"}) == b"\0\0\0"
