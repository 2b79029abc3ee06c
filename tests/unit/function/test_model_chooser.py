"""The function's model canary (functions/inference/canary.py) on the real model store over an
in-memory bucket: both models held while the pointer names a canary, chosen per request by the
share, tagged with their role on the answer; the stable one only when the canary cannot be held."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import app
from canary import ModelChooser
from tests.function_support import fixture_model, invoke, log_records, new_version


def set_canary(fake_s3, manifest, version, share):
    key = "models/mnist/latest.json"
    pointer = json.loads(fake_s3.objects[key])
    pointer["canary"] = {"version": version, "share": share}
    fake_s3.objects[key] = json.dumps(pointer).encode()


def publish_canary(fake_s3, manifest, share):
    v2 = manifest["version"] + 1
    fake_s3.publish(new_version(manifest, v2, fixture_model()), fixture_model(), pointer=False)
    set_canary(fake_s3, manifest, v2, share)
    return v2


class Draws:
    """draw(): 0.00, 0.01, ..., 0.99, 0.00, ... (an exact share over each 100 requests)."""

    def __init__(self):
        self.n = 0

    def __call__(self) -> float:
        self.n += 1
        return ((self.n - 1) % 100) / 100


def chooser_over(store, **kwargs) -> ModelChooser:
    return ModelChooser(lambda: store, **kwargs)


def test_without_a_canary_every_request_is_stable(make_store, fake_s3):
    store = make_store(fake_s3)
    chooser = chooser_over(store)
    model, role = chooser.choose(_deadline())
    assert role == "stable" and model is store.current


def _deadline():
    from mlcore.deadline import Deadline

    return Deadline(10)


def test_both_models_are_held_and_chosen_by_the_share(make_store, fake_s3, manifest):
    v1 = manifest["version"]
    v2 = publish_canary(fake_s3, manifest, 10)
    store = make_store(fake_s3)
    chooser = chooser_over(store, draw=Draws())
    chooser.choose(_deadline())  # the stable loads, reads the pointer with its canary
    canary_store = chooser.canary_store(store)
    canary_store.get(_deadline())  # the canary loads (in the background in real requests)
    roles = [chooser.choose(_deadline()) for _ in range(200)]
    counts = {"stable": 0, "canary": 0}
    for model, role in roles:
        counts[role] += 1
        assert model.version == (v2 if role == "canary" else v1)
    assert counts == {"stable": 180, "canary": 20}


def test_a_request_never_waits_for_the_canary(make_store, fake_s3, manifest):
    publish_canary(fake_s3, manifest, 99)
    store = make_store(fake_s3)
    chooser = chooser_over(store, draw=lambda: 0.0)
    _, role = chooser.choose(_deadline())
    assert role == "stable"  # the canary's load has only started


def test_a_canary_that_does_not_fit_beside_the_stable_is_not_served_and_counted(
    make_store, fake_s3, manifest
):
    publish_canary(fake_s3, manifest, 50)
    skipped = []
    store = make_store(fake_s3)
    size = len(fixture_model())
    chooser = chooser_over(
        store,
        draw=lambda: 0.0,
        budget=lambda: size + size // 2,
        on_skipped=lambda *a: skipped.append(a),
    )
    chooser.choose(_deadline())
    canary_store = chooser.canary_store(store)
    canary_store.wait(10)
    try:
        canary_store.get(_deadline())
    except Exception:
        pass
    roles = {chooser.choose(_deadline())[1] for _ in range(20)}
    assert roles == {"stable"}
    ((version, reason),) = skipped
    assert version == manifest["version"] + 1 and "does not fit in memory" in reason


def test_a_cleared_canary_is_dropped(make_store, fake_s3, manifest, clock):
    publish_canary(fake_s3, manifest, 50)
    store = make_store(fake_s3)
    chooser = chooser_over(store, draw=lambda: 0.0)
    chooser.choose(_deadline())
    assert chooser.canary_store(store) is not None
    pointer = json.loads(fake_s3.objects["models/mnist/latest.json"])
    del pointer["canary"]
    fake_s3.objects["models/mnist/latest.json"] = json.dumps(pointer).encode()
    clock.advance(store.settings.refresh_seconds + 1)
    store.get()
    store.wait(10)
    assert chooser.canary_store(store) is None
    assert chooser.choose(_deadline())[1] == "stable"


def test_answers_and_log_lines_name_the_version_and_role(
    serve, fake_s3, manifest, load_event, monkeypatch, capsys
):
    v2 = publish_canary(fake_s3, manifest, 99)
    store = serve(fake_s3)
    app.get_chooser.cache_clear()
    monkeypatch.setattr(app, "get_chooser", lambda: chooser)
    chooser = ModelChooser(lambda: app.get_store(), draw=lambda: 0.0)
    invoke(load_event("health-deep.json"))
    chooser.canary_store(store).get(_deadline())
    result = invoke(load_event("predict-instances.json"))
    assert result.status == 200
    assert result.body["model"] == {"name": "mnist", "version": v2, "role": "canary"}
    # every log line after the choice carries them (the logger's keys for this invocation)
    keys = app.logger.get_current_keys()
    assert (keys["model_version"], keys["model_role"]) == (v2, "canary")
    app.logger.info("a line of this request")
    (line,) = [
        r
        for r in log_records(capsys.readouterr().out)
        if r.get("message") == "a line of this request"
    ]
    assert (line["model_version"], line["model_role"]) == (v2, "canary")
    health = invoke(load_event("health-deep.json"))
    assert health.body["model"]["role"] == "stable"
    capsys.readouterr()
    app.logger.info("a line after the next request")  # the keys are not carried to it
    (after,) = [r for r in log_records(capsys.readouterr().out) if "next request" in r["message"]]
    assert "model_role" not in after and "model_version" not in after


def test_a_hostile_canary_share_is_ignored_and_the_stable_model_answers(
    serve, fake_s3, manifest, load_event
):
    """The fault probe's pointer (issue 25): a share of 1e400 is valid JSON that reads as inf;
    every /predict answered 500. A malformed canary counts as none: the stable model answers."""
    publish_canary(fake_s3, manifest, 50)
    key = "models/mnist/latest.json"
    text = fake_s3.objects[key].decode().replace('"share": 50', '"share": 1e400')
    fake_s3.objects[key] = text.encode()
    serve(fake_s3)
    app.get_chooser.cache_clear()
    for _ in range(3):
        result = invoke(load_event("predict-instances.json"))
        assert result.status == 200, result.body
        assert result.body["model"] == {
            "name": "mnist",
            "version": manifest["version"],
            "role": "stable",
        }


# -- the rules themselves, on stand-ins for the stores (what mutation testing found unpinned) --


def test_the_memory_budget_is_half_the_functions_memory():
    from canary import memory_budget

    assert memory_budget({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}) == 1024 * 2**20
    assert memory_budget({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": ""}) == 512 * 2**20
    assert memory_budget({}) == 512 * 2**20  # outside Lambda: as a 1,024 MB function


class StandInStore:
    """What ModelChooser reads of a ModelStore: the served model, settings, the pointer; and
    pinned(), which records the canary store's hooks."""

    def __init__(self, served_size=100, served_path=None, memory_max_bytes=1000, pointer=None):
        from types import SimpleNamespace

        self.current = SimpleNamespace(size=served_size, path=served_path)
        self.settings = SimpleNamespace(
            memory_max_bytes=memory_max_bytes, follows_latest=True, model_version="latest"
        )
        self.pointer = pointer
        self.restores = 0
        self.refused = {}
        self.deadlines = []  # what get() was given

    def pinned(self, version, on_failure=None, admit=None):
        pinned = StandInStore()
        pinned.settings.model_version = str(version)
        pinned.on_failure, pinned.admit = on_failure, admit
        return pinned

    def get(self, deadline):
        self.deadlines.append(deadline)
        return f"model {self.settings.model_version}"

    def restored(self):
        self.restores += 1


def _admit(stable, budget):
    """The admission check the canary store of `stable` gets, under a budget in bytes."""
    from mlcore.registry import Pointer

    stable.pointer = Pointer.first(3, "t").with_canary(4, 10, "t")
    return ModelChooser(lambda: stable, budget=lambda: budget).canary_store(stable).admit


def test_a_canary_in_memory_is_admitted_up_to_the_budget_with_the_stable_in_memory():
    stable = StandInStore(served_size=100, memory_max_bytes=1000)
    admit = _admit(stable, budget=600)
    assert admit(500) is None  # 500 + 100 == the budget
    reason = admit(501)
    assert "does not fit in memory" in reason and "601 bytes together, 600 allowed" in reason


def test_a_model_of_exactly_memory_max_bytes_is_held_in_memory():
    admit = _admit(StandInStore(served_size=100, memory_max_bytes=500), budget=599)
    assert admit(500) is not None  # in memory: 600 > 599
    assert admit(501) is None  # above memory_max_bytes: in /tmp, the stable's 100 only


def test_a_canary_in_tmp_costs_no_memory():
    admit = _admit(StandInStore(served_size=100, memory_max_bytes=500), budget=100)
    assert admit(10**9) is None  # the stable's 100 bytes == the budget


def test_a_stable_model_in_tmp_leaves_the_budget_to_the_canary():
    admit = _admit(StandInStore(served_size=400, served_path="/tmp/m", memory_max_bytes=500), 300)
    assert admit(300) is None
    assert admit(301) is not None


def test_the_canary_store_reports_its_failures_to_the_routers_hook():
    from mlcore.registry import Pointer

    failures = []
    stable = StandInStore(pointer=Pointer.first(3, "t").with_canary(4, 10, "t"))
    chooser = ModelChooser(lambda: stable, on_canary_failure=lambda *a: failures.append(a))
    store = chooser.canary_store(stable)
    assert store.settings.model_version == "4"
    store.on_failure(4, "bad")
    assert failures == [(4, "bad")]


def test_the_share_is_the_pointers_canary_share_else_none():
    from mlcore.registry import Pointer

    chooser = ModelChooser(lambda: None)
    assert chooser.percent(StandInStore(pointer=None)) == 0
    assert chooser.percent(StandInStore(pointer=Pointer.first(3, "t"))) == 0
    with_canary = Pointer.first(3, "t").with_canary(4, 37, "t")
    assert chooser.percent(StandInStore(pointer=with_canary)) == 37


def test_a_restore_reaches_the_canary_store_only_when_there_is_one():
    from mlcore.registry import Pointer

    stable = StandInStore(pointer=Pointer.first(3, "t").with_canary(4, 10, "t"))
    chooser = ModelChooser(lambda: stable)
    chooser.restored()  # no canary store yet: nothing to restore, no error
    store = chooser.canary_store(stable)
    chooser.restored()
    assert store.restores == 1 and stable.restores == 0


def _with_canary(version, share=10):
    from mlcore.registry import Pointer

    return Pointer.first(3, "t").with_canary(version, share, "t")


def test_the_canary_store_follows_the_pointers_canary_and_the_stable_store():
    stable = StandInStore(pointer=None)
    chooser = ModelChooser(lambda: stable)
    assert chooser.canary_store(stable) is None  # the pointer not read yet
    stable.pointer = _with_canary(4)
    first = chooser.canary_store(stable)
    assert first.settings.model_version == "4" and chooser.canary_store(stable) is first
    stable.pointer = _with_canary(5)  # another canary, same stable store: a new canary store
    assert chooser.canary_store(stable).settings.model_version == "5"
    newer = StandInStore(pointer=_with_canary(5))  # another stable store, same canary: new too
    assert chooser.canary_store(newer) is not chooser.canary_store(stable)


def test_a_canary_cleared_then_named_again_gets_a_new_store():
    stable = StandInStore(pointer=_with_canary(4))
    chooser = ModelChooser(lambda: stable)
    chooser.canary_store(stable)
    stable.pointer = _with_canary(4).promoted(3, "t")  # the canary cleared
    assert chooser.canary_store(stable) is None
    chooser.restored()  # nothing to restore
    stable.pointer = _with_canary(4)
    assert chooser.canary_store(stable).settings.model_version == "4"


def test_the_share_is_exact_and_the_stable_model_gets_the_requests_deadline():
    from mlcore.deadline import Deadline

    stable = StandInStore(pointer=_with_canary(4, share=10))
    deadline = Deadline(5)
    for draw, expected in ((0.0995, ("model 4", "canary")), (0.1, ("model latest", "stable"))):
        chooser = ModelChooser(lambda: stable, draw=lambda draw=draw: draw)
        assert chooser.choose(deadline) == expected
    assert stable.deadlines == [deadline, deadline]


# -- what the version and label paths see (TF Serving's status, /versions/N, /labels/L) ------


class VersionedStore(StandInStore):
    """A stand-in whose models carry their version (what held() reports). canary_loading: the
    canary store's get() answers 503 with it, as a canary store does while its model loads."""

    def __init__(self, pointer=None, canary_loading=None, loading=None):
        super().__init__(pointer=pointer)
        self.canary_loading, self.loading = canary_loading, loading

    def pinned(self, version, on_failure=None, admit=None):
        self.canary = VersionedStore(loading=self.canary_loading)
        self.canary.settings.model_version = str(version)
        return self.canary

    def get(self, deadline):
        from errors import ModelUnavailable

        self.deadlines.append(deadline)
        if self.loading is not None:
            raise ModelUnavailable(self.loading)
        version = self.settings.model_version
        return SimpleNamespace(version=3 if version == "latest" else int(version))


def _held(canary_state):
    """held() over a stable model of version 3 and a canary of version 4 that is loaded,
    loading or refused; draws that always choose the stable model."""
    from mlcore.deadline import Deadline

    loading = "version 4 is loading" if canary_state == "loading" else None
    stable = VersionedStore(pointer=_with_canary(4), canary_loading=loading)
    chooser = ModelChooser(lambda: stable, draw=lambda: 0.99)
    if canary_state == "refused":
        chooser.canary_store(stable).refused[4] = "does not fit in memory"
    deadline = Deadline(5)
    return chooser, stable, deadline, chooser.held(deadline)


def test_held_names_the_stable_and_a_loaded_canary_and_the_canary_never_waits():
    _, stable, deadline, held = _held("loaded")
    assert [(e.version, e.role, e.state, e.problem) for e in held] == [
        (3, "stable", "AVAILABLE", None),
        (4, "canary", "AVAILABLE", None),
    ]
    assert stable.deadlines == [deadline]  # the stable waits as a request does
    (canary_deadline,) = stable.canary.deadlines
    assert canary_deadline.expired  # the canary: never waited for


def test_a_loading_canary_is_held_as_loading_and_its_version_answers_503_saying_so():
    from errors import ModelUnavailable

    chooser, _, deadline, held = _held("loading")
    assert [(e.version, e.role, e.state, e.problem, e.refused) for e in held[1:]] == [
        (4, "canary", "LOADING", "version 4 is loading", False)
    ]
    assert held[1].model is None
    with pytest.raises(ModelUnavailable) as unavailable:
        chooser.pick(deadline, version="4")
    assert unavailable.value.message == "version 4 (canary): version 4 is loading"
    assert unavailable.value.status == 503


def test_a_refused_canary_is_held_as_ended_with_the_reason():
    _, _, _, held = _held("refused")
    assert [(e.version, e.state, e.problem, e.refused) for e in held[1:]] == [
        (4, "END", "refused: does not fit in memory", True)
    ]


def test_pick_by_version_or_label_waits_for_the_stable_with_the_requests_deadline():
    chooser, stable, deadline, _ = _held("loaded")
    stable.deadlines.clear()
    model, role = chooser.pick(deadline, version="3")
    assert (model.version, role) == (3, "stable")
    assert chooser.pick(deadline, label="canary")[0].version == 4
    assert (chooser.pick(deadline)[1], stable.deadlines) == ("stable", [deadline] * 3)


def test_a_missing_version_or_label_is_a_404_naming_what_is_held():
    from canary import Held, find
    from errors import ApiError

    entries = [Held(3, "stable", "m3"), Held(4, "canary", "m4")]
    with pytest.raises(ApiError) as missing:
        find(entries, "5" * 50, None)
    assert missing.value.code == "VERSION_NOT_FOUND"
    assert missing.value.message == (
        f"version '{'5' * 40}' is not served here; the versions are 3 (stable), 4 (canary)"
    )
    with pytest.raises(ApiError) as missing:
        find(entries, None, "b" * 50)
    assert missing.value.message == (
        f"label '{'b' * 40}' names no version now; the labels are stable and canary (while a "
        "canary runs); now: stable (version 3), canary (version 4)"
    )
    assert find(entries, "4", None) is entries[1] and find(entries, None, "stable") is entries[0]


def test_canary_now_says_what_this_environment_holds_and_starts_nothing():
    """The open GET /health's view of the canary: LOADING until this stable store's canary
    store holds the pointer's version, AVAILABLE once loaded, END with the reason once refused;
    nothing for a pinned stable store or a pointer without a canary."""
    from mlcore.registry import Pointer

    stable = StandInStore(pointer=_with_canary(4))
    chooser = ModelChooser(lambda: stable)
    assert chooser.canary_now(stable) == {"version": 4, "state": "LOADING"}  # no store yet
    assert chooser._canary is None  # and none was made
    store = chooser.canary_store(stable)
    store.current = None  # its load has not ended
    assert chooser.canary_now(stable) == {"version": 4, "state": "LOADING"}
    store.current = SimpleNamespace(size=1, path=None)
    assert chooser.canary_now(stable) == {"version": 4, "state": "AVAILABLE"}
    store.refused[4] = "does not fit in memory"
    refused = {"version": 4, "state": "END", "refused": "does not fit in memory"}
    assert chooser.canary_now(stable) == refused
    # another stable store naming the same canary (after a restore): not its canary store yet
    assert chooser.canary_now(StandInStore(pointer=_with_canary(4))) == {
        "version": 4,
        "state": "LOADING",
    }
    stable.pointer = _with_canary(5)  # a new canary: the store held is another version's
    assert chooser.canary_now(stable) == {"version": 5, "state": "LOADING"}
    stable.pointer, stable.settings.follows_latest = _with_canary(4), False  # pinned
    assert chooser.canary_now(stable) is None
    stable.settings.follows_latest = True
    for pointer in (None, Pointer.first(3, "t")):  # not read yet; no canary
        stable.pointer = pointer
        assert chooser.canary_now(stable) is None
