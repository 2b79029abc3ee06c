"""Generic models (mlcore.generic) through the real handler: TF Serving's REST API, the Open
Inference Protocol (v2) and /predict, each answer compared with LiteRT run directly on the
model file (the reference below quantizes as the model's own tensors say, by itself)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tests.function_support import (
    GENERIC_DIR,
    GENERIC_VERSION,
    FakeS3,
    generic_model,
    invoke,
    new_version,
    with_body,
)

RNG = np.random.default_rng(23)


def litert(file: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model file's own answer through LiteRT's signature runner, real values in and out
    (quantized and dequantized here with each tensor's parameters)."""
    interpreter = Interpreter(model_path=str(GENERIC_DIR / file))
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()
    fed = {}
    for name, values in inputs.items():
        scale, zero = details[name]["quantization"]
        dtype = details[name]["dtype"]
        if scale:
            info = np.iinfo(dtype)
            values = np.clip(np.round(values / scale) + zero, info.min, info.max)
        fed[name] = np.asarray(values).astype(dtype)
    answers = runner(**fed)
    outputs = runner.get_output_details()
    real = {}
    for name, values in answers.items():
        scale, zero = outputs[name]["quantization"]
        real[name] = (values.astype(np.float32) - zero) * scale if scale else values
    return real


def step(file: str, output: str) -> float:
    """One quantization step of an output (0 for a float one)."""
    interpreter = Interpreter(model_path=str(GENERIC_DIR / file))
    details = interpreter.get_signature_runner("serving_default").get_output_details()
    return details[output]["quantization"][0]


def pair_inputs(n: int) -> dict[str, np.ndarray]:
    """Inputs within what the int8 model's quantization holds (its calibration ranges)."""
    return {
        "features": RNG.uniform(-1.9, 1.9, (n, 6)).astype(np.float32),
        "context": RNG.uniform(0, 0.99, (n, 3)).astype(np.float32),
    }


def event(method: str, path: str, body=None, headers=None) -> dict:
    from tests.function_support import expected_events  # noqa: F401 - events are files

    with open(GENERIC_DIR.parent.parent.parent / "events" / "health.json") as f:
        base = json.load(f)
    base["httpMethod"], base["path"], base["resource"] = method, path, "/{proxy+}"
    base["headers"] = {"Content-Type": "application/json", **(headers or {})}
    base["multiValueHeaders"] = {k: [v] for k, v in base["headers"].items()}
    return with_body(base, None if body is None else json.dumps(body))


@pytest.fixture
def serve_generic(serve):
    def install(file: str, name: str = "pair", labels: bool = False, **overrides):
        manifest, model = generic_model(file, name, labels=labels)
        s3 = FakeS3()
        s3.publish(manifest, model, name=name)
        store = serve(s3, model_name=name, **overrides)
        return manifest, s3, store

    return install


@pytest.mark.parametrize("file", ["pair-float32.tflite", "pair-int8.tflite"])
def test_v2_infer_equals_litert(serve_generic, file):
    serve_generic(file)
    inputs = pair_inputs(3)
    body = {
        "id": "x1",
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": "FP32", "data": v.ravel().tolist()}
            for k, v in inputs.items()
        ],
    }
    result = invoke(event("POST", "/v2/models/pair/infer", body))
    assert result.status == 200, result.body
    assert result.body["model_name"] == "pair" and result.body["id"] == "x1"
    assert result.body["model_version"] == str(GENERIC_VERSION)
    expected = litert(file, inputs)
    assert [o["name"] for o in result.body["outputs"]] == ["classes", "score"]
    for output in result.body["outputs"]:
        assert output["datatype"] == "FP32"  # int8 outputs are dequantized
        got = np.reshape(output["data"], output["shape"])
        want = expected[output["name"]]
        assert got.shape == want.shape
        tolerance = step(file, output["name"]) or 1e-6
        assert np.abs(got - want).max() <= tolerance, output["name"]


def test_v2_answers_the_outputs_asked_for(serve_generic):
    serve_generic("pair-int8.tflite")
    inputs = pair_inputs(1)
    body = {
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": "FP32", "data": v.tolist()}
            for k, v in inputs.items()
        ],
        "outputs": [{"name": "score"}],
    }
    result = invoke(event("POST", f"/v2/models/pair/versions/{GENERIC_VERSION}/infer", body))
    assert [o["name"] for o in result.body["outputs"]] == ["score"]
    body["outputs"] = [{"name": "logits"}]
    result = invoke(event("POST", "/v2/models/pair/infer", body))
    assert (result.status, result.code) == (400, "UNKNOWN_OUTPUT")
    assert "classes, score" in result.body["error"]


def v2_body(**overrides) -> dict:
    tensors = {
        "features": {"name": "features", "shape": [1, 6], "datatype": "FP32", "data": [0.1] * 6},
        "context": {"name": "context", "shape": [1, 3], "datatype": "FP32", "data": [0.5] * 3},
    }
    for name, changes in overrides.items():
        tensors[name] = {**tensors[name], **changes}
    return {"inputs": [t for t in tensors.values() if t is not None]}


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (v2_body(features={"name": "feature"}), "UNKNOWN_INPUT", "context, features"),
        ({"inputs": [v2_body()["inputs"][0]]}, "MISSING_INPUT", "context, features"),
        (v2_body(features={"datatype": "INT64"}), "INVALID_TYPE", "FP32"),
        (v2_body(features={"shape": [1, 5]}), "INVALID_SHAPE", "needs 5"),
        (v2_body(features={"shape": [6], "data": [0.1] * 6}), "INVALID_SHAPE", "[any, 6]"),
        (v2_body(features={"data": [9.0] * 6}), "VALUE_OUT_OF_RANGE", "[-1.98"),
        (v2_body(features={"data": [True] * 6}), "INVALID_TYPE", "numbers"),
        (
            v2_body(features={"parameters": {"binary_data_size": 24}}),
            "UNSUPPORTED_EXTENSION",
            "binary_data=False",
        ),
        (
            {**v2_body(), "outputs": [{"name": "score", "parameters": {"binary_data": True}}]},
            "UNSUPPORTED_EXTENSION",
            "JSON",
        ),
        ({**v2_body(), "extra": 1}, "INVALID_TYPE", "inputs"),
    ],
)
def test_v2_bad_tensors_are_400_naming_what_is_expected(serve_generic, body, code, named):
    serve_generic("pair-int8.tflite")
    result = invoke(event("POST", "/v2/models/pair/infer", body))
    assert (result.status, result.code) == (400, code), result.body
    assert named in result.body["error"]


def test_v2_binary_header_is_refused(serve_generic):
    serve_generic("pair-int8.tflite")
    headers = {"Inference-Header-Content-Length": "120"}
    result = invoke(event("POST", "/v2/models/pair/infer", v2_body(), headers))
    assert (result.status, result.code) == (400, "UNSUPPORTED_EXTENSION")


def test_v2_metadata_health_and_server(serve_generic):
    serve_generic("pair-int8.tflite")
    metadata = invoke(event("GET", "/v2/models/pair")).body
    assert metadata == {
        "name": "pair",
        "versions": [str(GENERIC_VERSION)],
        "platform": "litert_tflite",
        "inputs": [
            {"name": "context", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "features", "datatype": "FP32", "shape": [-1, 6]},
        ],
        "outputs": [
            {"name": "classes", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "score", "datatype": "FP32", "shape": [-1, 1]},
        ],
    }
    assert invoke(event("GET", "/v2/health/live")).status == 200
    assert invoke(event("GET", "/v2/health/ready")).status == 200
    assert invoke(event("GET", "/v2/models/pair/ready")).status == 200
    assert invoke(event("GET", "/v2/models/other/ready")).code == "MODEL_NOT_FOUND"
    assert invoke(event("GET", "/v2/models/pair/versions/1/ready")).code == "VERSION_NOT_FOUND"
    server = invoke(event("GET", "/v2")).body
    assert server["name"] == "serverless-ml" and server["extensions"] == []


def test_tfserving_row_and_columnar_formats_equal_litert(serve_generic):
    serve_generic("pair-int8.tflite")
    inputs = pair_inputs(2)
    expected = litert("pair-int8.tflite", inputs)
    rows = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
    answer = invoke(event("POST", "/v1/models/pair:predict", {"instances": rows})).body
    predictions = answer["predictions"]
    assert [sorted(p) for p in predictions] == [["classes", "score"]] * 2
    for name in ("classes", "score"):
        got = np.array([p[name] for p in predictions])
        assert np.abs(got - expected[name]).max() <= step("pair-int8.tflite", name)
    columns = {k: v.tolist() for k, v in inputs.items()}
    body = {"signature_name": "", "inputs": columns}
    outputs = invoke(event("POST", "/v1/models/pair:predict", body)).body["outputs"]
    for name in ("classes", "score"):
        assert np.abs(np.array(outputs[name]) - expected[name]).max() <= step(
            "pair-int8.tflite", name
        )


def test_tfserving_metadata_states_dtypes_shapes_and_value_ranges(serve_generic):
    manifest, _, _ = serve_generic("pair-int8.tflite")
    metadata = invoke(event("GET", "/v1/models/pair/metadata")).body
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["features"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["features"]["tensor_shape"]["dim"]] == [
        "-1",
        "6",
    ]
    ranges = metadata["metadata"]["expected_inputs"]["serving_default"]
    listed = manifest["signatures"]["serving_default"]["inputs"]
    for name in ("features", "context"):
        assert ranges[name] == {"value_range": listed[name]["value_range"], "preprocessing": None}


def test_mixed_dtypes_int32_and_bool(serve_generic):
    serve_generic("mixed.tflite", name="mixed")
    ids = RNG.integers(0, 100, (2, 5)).astype(np.int32)
    mask = RNG.random((2, 5)) > 0.5
    expected = litert("mixed.tflite", {"ids": ids, "mask": mask})
    body = {
        "inputs": [
            {"name": "ids", "shape": [2, 5], "datatype": "INT32", "data": ids.tolist()},
            {"name": "mask", "shape": [2, 5], "datatype": "BOOL", "data": mask.ravel().tolist()},
        ]
    }
    result = invoke(event("POST", "/v2/models/mixed/infer", body))
    outputs = {o["name"]: o for o in result.body["outputs"]}
    assert outputs["count"]["datatype"] == "INT32"
    assert outputs["count"]["data"] == expected["count"].tolist()
    assert np.allclose(outputs["mean_id"]["data"], expected["mean_id"].ravel())
    body["inputs"][1]["data"] = mask.astype(int).ravel().tolist()  # 0/1 are not booleans
    assert invoke(event("POST", "/v2/models/mixed/infer", body)).code == "INVALID_TYPE"
    body["inputs"][1]["data"] = mask.ravel().tolist()
    body["inputs"][0]["data"] = (ids + 0.5).tolist()  # an INT32 takes whole numbers
    assert invoke(event("POST", "/v2/models/mixed/infer", body)).code == "INVALID_TYPE"
    rows = [{"ids": ids[i].tolist(), "mask": mask[i].tolist()} for i in range(2)]
    predictions = invoke(event("POST", "/v1/models/mixed:predict", {"instances": rows})).body
    assert [p["count"] for p in predictions["predictions"]] == expected["count"].tolist()


def test_a_model_without_signatures_is_named_from_its_graph(serve_generic):
    serve_generic("legacy.tflite", name="legacy")
    metadata = invoke(event("GET", "/v2/models/legacy")).body
    names = [t["name"] for t in metadata["inputs"]]
    assert names == ["serving_default_context:0", "serving_default_features:0"]
    inputs = pair_inputs(1)
    body = {
        "inputs": [
            {
                "name": f"serving_default_{k}:0",
                "shape": [1, v.shape[1]],
                "datatype": "FP32",
                "data": v.tolist(),
            }
            for k, v in inputs.items()
        ]
    }
    result = invoke(event("POST", "/v2/models/legacy/infer", body))
    expected = litert("pair-float32.tflite", inputs)  # the same graph, with its signature
    got = {o["name"]: np.reshape(o["data"], o["shape"]) for o in result.body["outputs"]}
    assert np.allclose(got["PartitionedCall:0"], expected["classes"], atol=1e-6)
    assert np.allclose(got["PartitionedCall:1"], expected["score"], atol=1e-6)


def test_predict_answers_each_output_and_labels_where_the_manifest_names_them(serve_generic):
    serve_generic("pair-float32.tflite", labels=True)
    inputs = pair_inputs(2)
    expected = litert("pair-float32.tflite", inputs)
    rows = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
    body = invoke(event("POST", "/predict", {"instances": rows})).body
    labels = ["north", "east", "south", "west"]
    for i, prediction in enumerate(body["predictions"]):
        assert prediction["label"] == labels[int(expected["classes"][i].argmax())]
        assert np.allclose(prediction["outputs"]["score"], expected["score"][i], atol=1e-6)
        assert len(prediction["top"]) == 3
    assert body["model"] == {"name": "pair", "version": GENERIC_VERSION, "role": "stable"}
    result = invoke(event("POST", "/predict", {"images": ["abc"]}))
    assert (result.status, result.code) == (400, "UNKNOWN_INPUT")


def test_budgets_apply_to_every_model(serve_generic):
    serve_generic("pair-int8.tflite", max_instances=2)
    body = v2_body(
        features={"shape": [3, 6], "data": [0.1] * 18}, context={"shape": [3, 3], "data": [0.5] * 9}
    )
    assert invoke(event("POST", "/v2/models/pair/infer", body)).code == "TOO_MANY_INSTANCES"
    rows = [{"features": [0.1] * 6, "context": [0.5] * 3}] * 3
    result = invoke(event("POST", "/v1/models/pair:predict", {"instances": rows}))
    assert (result.status, result.code) == (413, "TOO_MANY_INSTANCES")


def test_an_answer_lambda_could_not_return_is_a_413(serve_generic, monkeypatch):
    import app

    serve_generic("pair-int8.tflite")
    monkeypatch.setattr(app, "MAX_RESPONSE_BYTES", 100)
    result = invoke(event("POST", "/v2/models/pair/infer", v2_body()))
    assert (result.status, result.code) == (413, "RESPONSE_TOO_LARGE")


def test_a_manifest_that_does_not_describe_its_model_is_refused(serve, capsys):
    manifest, model = generic_model("pair-int8.tflite", "pair")
    manifest["signatures"]["serving_default"]["inputs"]["features"]["shape"] = [-1, 7]
    s3 = FakeS3()
    s3.publish(manifest, model, name="pair")
    serve(s3, model_name="pair")
    result = invoke(event("GET", "/v2/models/pair"))
    assert (result.status, result.code) == (503, "MODEL_UNAVAILABLE")
    assert "does not match its manifest" in result.body["error"]


def test_an_unusable_manifest_is_refused_naming_the_field(serve):
    manifest, model = generic_model("pair-int8.tflite", "pair")
    manifest["signatures"]["serving_default"]["inputs"]["features"]["colour"] = "red"
    s3 = FakeS3()
    s3.publish(manifest, model, name="pair")
    serve(s3, model_name="pair")
    result = invoke(event("GET", "/health/deep"))
    assert result.status == 503 and (
        "$.signatures.serving_default.inputs.features must not contain {'colour'}"
        in result.body["error"]
    )


# -- versions, labels and CORS, for any model -----------------------------------------------


def test_status_lists_every_version_held_and_each_answers_by_version_and_label(serve_generic):
    manifest, s3, _ = serve_generic("pair-int8.tflite")
    assert invoke(event("GET", "/health/deep")).status == 200
    canary = new_version(manifest, GENERIC_VERSION + 1)
    s3.publish(canary, (GENERIC_DIR / "pair-int8.tflite").read_bytes(), name="pair", pointer=False)
    pointer = json.loads(s3.objects["models/pair/latest.json"])
    pointer["canary"] = {"version": GENERIC_VERSION + 1, "share": 10}
    s3.objects["models/pair/latest.json"] = json.dumps(pointer).encode()
    import app

    app.get_store().pointer = None  # the next refresh reads the pointer again
    app.get_store()._checked_at = float("-inf")
    invoke(event("GET", "/health/deep"))
    app.get_store().wait(5)
    invoke(event("GET", "/v1/models/pair"))  # starts the canary's load
    canary_store = app.get_chooser().canary_store(app.get_store())
    canary_store.wait(5)
    status = invoke(event("GET", "/v1/models/pair")).body["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [
        (str(GENERIC_VERSION), "AVAILABLE"),
        (str(GENERIC_VERSION + 1), "AVAILABLE"),
    ]
    for path in (f"/versions/{GENERIC_VERSION + 1}", "/labels/canary"):
        answer = invoke(
            event(
                "POST",
                f"/v1/models/pair{path}:predict",
                {"inputs": {"features": [[0.1] * 6], "context": [[0.5] * 3]}},
            )
        )
        assert answer.status == 200, answer.body
        assert invoke(event("GET", f"/v1/models/pair{path}/metadata")).body["model_spec"][
            "version"
        ] == str(GENERIC_VERSION + 1)
    result = invoke(
        event("POST", f"/v2/models/pair/versions/{GENERIC_VERSION + 1}/infer", v2_body())
    )
    assert result.body["model_version"] == str(GENERIC_VERSION + 1)
    missing = invoke(event("GET", "/v1/models/pair/versions/5"))
    assert (
        missing.code == "VERSION_NOT_FOUND"
        and f"{GENERIC_VERSION + 1} (canary)" in missing.body["error"]
    )


def test_cors_preflight_and_answers(serve_generic, monkeypatch):
    serve_generic("pair-int8.tflite", cors_allow_origins=("https://app.example.com",))
    allowed = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    preflight = invoke(event("OPTIONS", "/v2/models/pair/infer", headers=allowed))
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Api-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    other = {**allowed, "Origin": "https://evil.example.com"}
    refused = invoke(event("OPTIONS", "/v2/models/pair/infer", headers=other))
    assert (refused.status, refused.code) == (403, "CORS_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in refused.headers
    answer = invoke(
        event("POST", "/v2/models/pair/infer", v2_body(), {"Origin": "https://app.example.com"})
    )
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert answer.headers["Vary"] == "Origin"
    error = invoke(
        event("POST", "/v2/models/pair/infer", {}, {"Origin": "https://app.example.com"})
    )
    assert error.status == 400 and error.headers["Access-Control-Allow-Origin"]
    assert (
        "Access-Control-Allow-Origin"
        not in invoke(
            event(
                "POST", "/v2/models/pair/infer", v2_body(), {"Origin": "https://evil.example.com"}
            )
        ).headers
    )


def test_without_cors_an_options_request_is_405_as_before(serve_generic):
    serve_generic("pair-int8.tflite")
    result = invoke(event("OPTIONS", "/v2/models/pair/infer", headers={"Origin": "https://a.b"}))
    assert (result.status, result.code) == (405, "METHOD_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in result.headers


def test_an_image_classifier_answers_v2_and_predict_in_turn(serve, fake_s3, load_event):
    """Both ways into one interpreter (a signature run at one batch size, then predict() at
    another, and back): LiteRT refuses a resize while anything holds its internals."""
    serve(fake_s3)
    for _ in range(2):
        v2 = invoke(load_event("v2-infer.json"))
        assert v2.status == 200, v2.body
        predict = load_event("tfserving-predict.json")
        body = json.loads(predict["body"])
        body["instances"] = body["instances"] * 2
        answer = invoke(with_body(predict, json.dumps(body)))
        assert answer.status == 200 and len(answer.body["predictions"]) == 2, answer.body


# -- the OpenAPI document describes the served model's bodies --------------------------------


def served_schema(document: dict, method: str, path: str) -> dict:
    operation = document["paths"][path][method]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def test_the_served_openapi_document_describes_the_real_bodies(serve_generic):
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    serve_generic("pair-int8.tflite", max_instances=4)
    assert invoke(event("GET", "/health/deep")).status == 200
    document = invoke(event("GET", "/openapi.json")).body
    validate(document)  # a valid OpenAPI 3.1 document
    tfserving = Draft202012Validator(served_schema(document, "post", "/v1/models/{name}:predict"))
    rows = [{"features": [0.1] * 6, "context": [0.5] * 3}]
    for good in (
        {"instances": rows},
        {"inputs": {"features": [[0.1] * 6], "context": [[0.5] * 3]}},
    ):
        assert not list(tfserving.iter_errors(good))
        assert invoke(event("POST", "/v1/models/pair:predict", good)).status == 200
    for bad in (
        {"instances": [{"features": [0.1] * 5, "context": [0.5] * 3}]},  # a wrong size
        {"instances": [{"features": [9.0] * 6, "context": [0.5] * 3}]},  # beyond int8's range
        {"instances": rows * 5},  # more than MaxInstances
        {"instances": [{"features": [0.1] * 6}]},  # an input missing
        {"instances": rows, "inputs": {}},
    ):
        assert list(tfserving.iter_errors(bad)), bad
        assert invoke(event("POST", "/v1/models/pair:predict", bad)).status in (400, 413)
    v2 = Draft202012Validator(served_schema(document, "post", "/v2/models/{name}/infer"))
    assert not list(v2.iter_errors(v2_body()))
    assert list(v2.iter_errors(v2_body(features={"name": "feature"})))
    assert list(v2.iter_errors(v2_body(features={"datatype": "INT8"})))
    name = document["paths"]["/v2/models/{name}/infer"]["post"]["parameters"][0]
    assert name["schema"]["enum"] == ["pair"]


def test_the_classifiers_document_bounds_pixels_and_shapes(serve, fake_s3, load_event):
    from jsonschema import Draft202012Validator

    serve(fake_s3)
    invoke(load_event("health-deep.json"))
    document = invoke(event("GET", "/openapi.json")).body
    predict = Draft202012Validator(served_schema(document, "post", "/predict"))
    for name in ("predict-instances.json", "predict-image.json"):
        assert not list(predict.iter_errors(json.loads(invoke_body(load_event(name)))))
    for name in (
        "bad-out-of-range.json",
        "bad-shape.json",
        "bad-empty-batch.json",
        "bad-too-many.json",
    ):
        assert list(predict.iter_errors(json.loads(invoke_body(load_event(name))))), name


def invoke_body(event_document: dict) -> str:
    import base64

    body = event_document["body"]
    return base64.b64decode(body).decode() if event_document.get("isBase64Encoded") else body


def test_tfserving_classify_and_regress_are_404(serve_generic):
    serve_generic("pair-int8.tflite")
    for verb in ("classify", "regress"):
        result = invoke(event("POST", f"/v1/models/pair:{verb}", {"examples": [{}]}))
        assert (result.status, result.code) == (404, "ROUTE_NOT_FOUND")


def test_a_generic_models_requests_are_counted_by_time_and_instances(serve_generic, capsys):
    from tests.function_support import emf_records, metric_values

    serve_generic("pair-int8.tflite")
    body = v2_body(
        features={"shape": [2, 6], "data": [0.1] * 12}, context={"shape": [2, 3], "data": [0.5] * 6}
    )
    assert invoke(event("POST", "/v2/models/pair/infer", body)).status == 200
    out = capsys.readouterr().out
    version = str(GENERIC_VERSION)
    assert metric_values(out, "InstancesPerRequest", model_version=version, role="stable") == [2]
    assert len(metric_values(out, "InferenceTime", model_version=version)) == 1
    names = {
        m["Name"]
        for r in emf_records(out)
        for d in r["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert not names & {"Confidence", "Predictions", "InputMeanIntensity"}  # a classifier's
