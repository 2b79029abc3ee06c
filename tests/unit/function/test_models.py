"""Several models in one deployment (models.py): each name its own store and chooser, made on
first use; LRU eviction within the memory budget; a model that cannot fit refused alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.function_support import (
    FIXTURE_DIR,
    generic_model,
    invoke,
    new_version,
    with_body,
)

MNIST_BYTES = 18984  # tests/fixtures/mnist/model.tflite


def event(load_event, method: str, path: str, body=None) -> dict:
    base = load_event("health.json")
    base["httpMethod"], base["path"], base["resource"] = method, path, "/{proxy+}"
    base["headers"] = {"Content-Type": "application/json"}
    base["multiValueHeaders"] = {k: [v] for k, v in base["headers"].items()}
    return with_body(base, None if body is None else json.dumps(body))


def digits(n: int) -> list:
    with np.load(FIXTURE_DIR / "digits.npz") as data:
        return data["x"][:n].astype(int).tolist()


@pytest.fixture
def three(fake_s3):
    """The registry with mnist (an image classifier) and two generic models beside it."""
    for file, name in (("pair-int8.tflite", "pair"), ("pair-float32.tflite", "pairf")):
        manifest, model = generic_model(file, name)
        fake_s3.publish(manifest, model, name=name)
    return fake_s3


PAIR = {"features": [[0.5] * 6], "context": [[0.1] * 3]}
ROW = {"features": [0.5] * 6, "context": [0.1] * 3}


def test_each_name_answers_with_its_own_model(serve, three, load_event):
    serve(three, model_names=("mnist", "pair", "pairf"))
    answer = invoke(event(load_event, "POST", "/v1/models/pair:predict", {"inputs": PAIR}))
    assert answer.status == 200, answer.body
    assert set(answer.body["outputs"]) == {"classes", "score"}
    mnist = invoke(event(load_event, "POST", "/predict", {"instances": digits(1)}))
    assert mnist.body["model"]["name"] == "mnist"
    chosen = invoke(event(load_event, "POST", "/predict", {"model": "pairf", "instances": [ROW]}))
    assert chosen.status == 200, chosen.body
    assert chosen.body["model"]["name"] == "pairf"
    ready = invoke(event(load_event, "GET", "/v2/models/pairf/ready"))
    assert ready.body == {"name": "pairf", "ready": True}
    health = invoke(event(load_event, "GET", "/health")).body
    assert [m["name"] for m in health["models"]] == ["mnist", "pair", "pairf"]
    assert all(m["loaded"] for m in health["models"])


def test_a_name_not_served_is_404_naming_the_served_ones(serve, three, load_event):
    serve(three, model_names=("mnist", "pair"))
    for path, body in (("/v2/models/pairf/ready", None), ("/predict", {"model": "pairf"})):
        method = "GET" if body is None else "POST"
        answer = invoke(event(load_event, method, path, body))
        assert (answer.status, answer.code) == (404, "MODEL_NOT_FOUND")
        assert "mnist, pair" in answer.body["error"]
    wrong = invoke(event(load_event, "POST", "/predict", {"model": 3, "instances": [ROW]}))
    assert (wrong.status, wrong.code) == (400, "INVALID_TYPE")


def test_the_wildcard_serves_every_model_under_the_prefix(serve, three, load_event):
    serve(three, model_names=("*",))
    answer = invoke(event(load_event, "GET", "/v2/models/pairf/ready"))
    assert answer.status == 200, answer.body
    health = invoke(event(load_event, "GET", "/health")).body
    assert [m["name"] for m in health["models"]] == ["mnist", "pair", "pairf"]
    missing = invoke(event(load_event, "GET", "/v2/models/nothing/ready"))
    assert (missing.status, missing.code) == (404, "MODEL_NOT_FOUND")


def test_the_least_recently_used_is_evicted_and_verified_again_on_its_next_request(
    serve, three, load_event, monkeypatch
):
    import app

    monkeypatch.setenv("MODELS_MEMORY_BYTES", str(MNIST_BYTES + 3000))  # mnist and one pair
    serve(three, model_names=("mnist", "pair", "pairf"))
    predict = {"instances": digits(1)}
    assert invoke(event(load_event, "POST", "/predict", predict)).status == 200
    assert invoke(event(load_event, "POST", "/predict", {"model": "pair", "instances": [ROW]}))
    held = {m["name"]: m["loaded"] for m in app.get_models().status()}
    assert held == {"mnist": True, "pair": True}  # pairf: not asked for yet
    version = json.loads(three.objects["models/mnist/latest.json"])["version"]
    manifest_key = f"models/mnist/{version}/manifest.json"
    reads = three.reads[manifest_key]
    # pairf needs room: mnist was used before pair, so mnist goes
    answer = invoke(event(load_event, "POST", "/predict", {"model": "pairf", "instances": [ROW]}))
    assert answer.status == 200, answer.body
    models = app.get_models()
    assert models.served_entry("mnist").store.current is None
    assert models.served_entry("pair").store.current is not None
    # mnist's next request loads it again, verified again (its manifest read again); pair goes
    again = invoke(event(load_event, "POST", "/predict", predict))
    assert again.status == 200 and again.body["model"]["name"] == "mnist"
    assert three.reads[manifest_key] == reads + 1
    assert models.served_entry("pair").store.current is None


def test_a_model_larger_than_the_budget_is_refused_and_the_others_serve(
    serve, three, load_event, monkeypatch
):
    monkeypatch.setenv("MODELS_MEMORY_BYTES", "10000")  # the pairs fit, mnist never does
    serve(three, model_names=("mnist", "pair"))
    refused = invoke(event(load_event, "POST", "/predict", {"instances": digits(1)}))
    assert (refused.status, refused.code) == (503, "MODEL_UNAVAILABLE")
    assert "18,984 bytes" in refused.body["error"] and "10,000" in refused.body["error"]
    answer = invoke(event(load_event, "POST", "/v1/models/pair:predict", {"inputs": PAIR}))
    assert answer.status == 200, answer.body


def test_a_pointer_change_on_one_model_leaves_the_others_untouched(serve, three, load_event, clock):
    store = serve(three, model_names=("mnist", "pair"), refresh_seconds=60)
    assert invoke(event(load_event, "POST", "/v1/models/pair:predict", {"inputs": PAIR}))
    assert invoke(event(load_event, "POST", "/predict", {"instances": digits(1)})).status == 200
    mnist_version = store.current.version
    manifest, model = generic_model("pair-int8.tflite", "pair")
    three.publish(new_version(manifest, manifest["version"] + 1, model), model, name="pair")
    clock.advance(61)
    import app

    pair = app.get_models().served_entry("pair").store
    for path, body in (("/v1/models/pair:predict", {"inputs": PAIR}), ("/predict", None)):
        invoke(event(load_event, "POST", path, body or {"instances": digits(1)}))
    pair.wait(5)
    store.wait(5)
    assert pair.current.version == manifest["version"] + 1
    assert store.current.version == mnist_version
    reads_of_mnist = {k: n for k, n in three.reads.items() if k.startswith("models/mnist/")}
    assert all(n == 1 for k, n in reads_of_mnist.items() if not k.endswith("latest.json"))


def test_model_version_pins_the_default_model_only(serve, three, load_event):
    version = json.loads(three.objects["models/mnist/latest.json"])["version"]
    serve(three, model_names=("mnist", "pair"), model_version=str(version))
    assert invoke(event(load_event, "POST", "/predict", {"instances": digits(1)})).status == 200
    answer = invoke(event(load_event, "POST", "/v1/models/pair:predict", {"inputs": PAIR}))
    assert answer.status == 200, answer.body  # pair follows its own latest.json


def test_the_default_model_used_after_another_is_the_more_recent_one(
    serve, three, load_event, monkeypatch
):
    """The default model alone is served without marking it (nothing to order it against);
    once another name has been served, each request for the default marks it again, so the
    other one is the least recently used and goes first."""
    import app

    monkeypatch.setenv("MODELS_MEMORY_BYTES", str(MNIST_BYTES + 3000))  # mnist and one pair
    serve(three, model_names=("mnist", "pair", "pairf"))
    predict = {"instances": digits(1)}
    for _ in range(3):
        assert invoke(event(load_event, "POST", "/predict", predict)).status == 200
    assert invoke(event(load_event, "POST", "/predict", {"model": "pair", "instances": [ROW]}))
    assert invoke(event(load_event, "POST", "/predict", predict)).status == 200  # mnist again
    answer = invoke(event(load_event, "POST", "/predict", {"model": "pairf", "instances": [ROW]}))
    assert answer.status == 200, answer.body
    models = app.get_models()
    assert models.served_entry("pair").store.current is None  # pair was used before mnist
    assert models.served_entry("mnist").store.current is not None
