"""Both inference protocols with their real clients, through the local HTTPS API against models
published side by side on the loopback S3 with `python -m training publish`: the digit
classifier (the fixture) and a model with two named inputs and two named outputs, float32 and
full-integer int8 (`--model file.tflite`, tests/fixtures/generic/make_models.py).

- Triton's `tritonclient[http]` (in .venv): readiness, model metadata, infer;
- KServe's SDK with the v2 protocol (in its own .venv-kserve: tests/integration/kserve_v2.py);
- TF Serving's REST API with plain HTTP (requests), row and columnar, by version and label.

Every answer equals LiteRT's on the same inputs, run directly on the model file (int8 within
one output quantization step). One local API at a time (one per model: issue 24 serves several).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.local_support import FIXTURE_DIR, ROOT, environ, local_api, s3_environment

pytestmark = pytest.mark.integration

GENERIC_DIR = ROOT / "tests" / "fixtures" / "generic"
KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
# model name -> its file (the fixture classifier is published from its artifact)
MODELS = {"mnist": None, "pair-f32": "pair-float32.tflite", "pair-int8": "pair-int8.tflite"}
ORIGINS = (
    "https://app.example.com,http://localhost:8080"  # CORS on: no client but a browser sees it
)


def litert(file: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model file's own answer through LiteRT (real values: quantized and dequantized here
    with each tensor's own parameters)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(file)).get_signature_runner("serving_default")
    details, fed = runner.get_input_details(), {}
    for name, values in inputs.items():
        scale, zero = details[name]["quantization"]
        if scale:
            info = np.iinfo(details[name]["dtype"])
            values = np.clip(np.round(values / scale) + zero, info.min, info.max)
        fed[name] = np.asarray(values).astype(details[name]["dtype"])
    outputs, answers = runner.get_output_details(), runner(**fed)
    return {
        name: (values.astype(np.float32) - outputs[name]["quantization"][1])
        * outputs[name]["quantization"][0]
        if outputs[name]["quantization"][0]
        else values
        for name, values in answers.items()
    }


def tolerance(file: Path, output: str) -> float:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(file)).get_signature_runner("serving_default")
    return runner.get_output_details()[output]["quantization"][0] or 1e-6


@pytest.fixture(scope="module")
def registry(s3_server, tmp_path_factory):
    """One bucket with the three models, each published by the training job's CLI."""
    import boto3

    from training.cli import main

    folder = tmp_path_factory.mktemp("protocols")
    env = s3_environment(s3_server)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    with environ(env):
        boto3.client("s3").create_bucket(Bucket=bucket)
        registry = ["--bucket", bucket, "--prefix", "models", "--artifacts", str(folder)]
        assert main(["publish", "--artifact", str(FIXTURE_DIR), *registry]) == 0
        for name, file in MODELS.items():
            if file:
                command = ["publish", "--model", str(GENERIC_DIR / file), "--name", name]
                assert main([*command, "--version", "1796500000", *registry]) == 0
    return {"bucket": bucket, "prefix": "models", "env": {**os.environ, **env}, "folder": folder}


@pytest.fixture(scope="module", params=list(MODELS))
def api(request, registry):
    published = {**registry, "name": request.param}
    folder = registry["folder"] / f"api-{request.param}"
    folder.mkdir()
    with local_api(folder, published, 1, overrides=(f"CorsAllowOrigins={ORIGINS}",)) as running:
        running.model = request.param
        yield running


def model_inputs(name: str, n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    if name == "mnist":
        with np.load(FIXTURE_DIR / "digits.npz") as digits:
            return {"image": digits["x"][:n, :, :, None].astype(np.float32)}
    return {  # within what the int8 model's quantization holds
        "features": rng.uniform(-1.9, 1.9, (n, 6)).astype(np.float32),
        "context": rng.uniform(0, 0.99, (n, 3)).astype(np.float32),
    }


def model_file(name: str) -> Path:
    return FIXTURE_DIR / "model.tflite" if MODELS[name] is None else GENERIC_DIR / MODELS[name]


def assert_equal_to_litert(name: str, got: dict[str, np.ndarray], inputs) -> None:
    expected = litert(model_file(name), inputs)
    assert sorted(got) == sorted(expected)
    for output, values in got.items():
        assert values.shape == expected[output].shape, output
        diff = np.abs(values.astype(np.float64) - expected[output]).max()
        assert diff <= tolerance(model_file(name), output), (output, diff)


# -- Triton's client -----------------------------------------------------------------------


def triton(api):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(
        url=f"127.0.0.1:{api.port}", ssl=True, ssl_options={"ca_certs": api.ca}
    )


def test_tritonclient_readiness_and_metadata(api):
    client, headers = triton(api), {"x-api-key": api.key}
    try:
        assert client.is_server_live(headers=headers)
        assert client.is_server_ready(headers=headers)
        assert client.is_model_ready(api.model, headers=headers)
        assert not client.is_model_ready("another", headers=headers)
        metadata = client.get_model_metadata(api.model, headers=headers)
        inputs = model_inputs(api.model)
        assert sorted(t["name"] for t in metadata["inputs"]) == sorted(inputs)
        assert all(t["datatype"] == "FP32" and t["shape"][0] == -1 for t in metadata["inputs"])
        assert metadata["platform"] == "litert_tflite" and metadata["versions"]
    finally:
        client.close()


def test_tritonclient_infer_equals_litert(api):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client, inputs = triton(api), model_inputs(api.model)
    try:
        requested = []
        for name, values in inputs.items():
            tensor = httpclient.InferInput(name, list(values.shape), "FP32")
            tensor.set_data_from_numpy(values, binary_data=False)  # JSON tensors
            requested.append(tensor)
        metadata = client.get_model_metadata(api.model, headers={"x-api-key": api.key})
        outputs = [
            httpclient.InferRequestedOutput(t["name"], binary_data=False)
            for t in metadata["outputs"]
        ]
        result = client.infer(
            api.model, requested, outputs=outputs, headers={"x-api-key": api.key}, request_id="r1"
        )
        got = {t["name"]: result.as_numpy(t["name"]) for t in metadata["outputs"]}
        assert result.get_response()["id"] == "r1"
        assert_equal_to_litert(api.model, got, inputs)
        # tritonclient's default is the binary extension: a clear 400, not a wrong answer
        name, values = next(iter(inputs.items()))
        binary = httpclient.InferInput(name, list(values.shape), "FP32")
        binary.set_data_from_numpy(values)
        with pytest.raises(InferenceServerException, match="binary tensor data extension"):
            client.infer(api.model, [binary], headers={"x-api-key": api.key})
    finally:
        client.close()


# -- KServe's SDK (its own environment) ------------------------------------------------------


def test_kserve_v2_client_infer_equals_litert(api, tmp_path):
    assert KSERVE_PYTHON.exists(), "make setup creates .venv-kserve (KServe's SDK)"
    inputs = model_inputs(api.model)
    request = {
        "url": api.url,
        "ca": api.ca,
        "key": api.key,
        "model": api.model,
        "inputs": {
            k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in inputs.items()
        },
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    done = subprocess.run(
        [str(KSERVE_PYTHON), str(ROOT / "tests" / "integration" / "kserve_v2.py")],
        stdin=(tmp_path / "request.json").open(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    assert sorted(answer["metadata_inputs"]) == sorted(inputs)
    got = {name: np.array(o["data"]).reshape(o["shape"]) for name, o in answer["outputs"].items()}
    assert_equal_to_litert(api.model, got, inputs)


# -- TF Serving's REST API -------------------------------------------------------------------


def call(api, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"x-api-key": api.key, **kwargs.pop("headers", {})}
    return requests.request(
        method, api.url + path, headers=headers, verify=api.ca, timeout=60, **kwargs
    )


def test_tfserving_rest_api_equals_litert(api):
    inputs = model_inputs(api.model, 2)
    status = call(api, "GET", f"/v1/models/{api.model}").json()["model_version_status"]
    (version,) = [s["version"] for s in status]
    columns = {k: v.tolist() for k, v in inputs.items()}
    for path in (":predict", f"/versions/{version}:predict", "/labels/stable:predict"):
        answer = call(api, "POST", f"/v1/models/{api.model}{path}", json={"inputs": columns}).json()
        assert "outputs" in answer, (path, answer)
        outputs = answer["outputs"]
        names = list(litert(model_file(api.model), inputs))
        got = (
            {n: np.array(outputs[n]) for n in names}
            if isinstance(outputs, dict)
            else {names[0]: np.array(outputs)}
        )
        assert_equal_to_litert(api.model, got, inputs)
    if api.model != "mnist":  # named rows (a model of several inputs)
        rows = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(2)]
        predictions = call(
            api, "POST", f"/v1/models/{api.model}:predict", json={"instances": rows}
        ).json()["predictions"]
        assert [sorted(p) for p in predictions] == [["classes", "score"]] * 2
    metadata = call(api, "GET", f"/v1/models/{api.model}/labels/stable/metadata").json()
    ranges = metadata["metadata"]["expected_inputs"]["serving_default"]
    assert sorted(ranges) == sorted(inputs)
    if api.model == "mnist":
        assert ranges["image"]["value_range"] == [0.0, 255.0]
        assert ranges["image"]["preprocessing"]["policy"] == "digit"
    elif api.model == "pair-int8":
        assert all(r["value_range"] for r in ranges.values())  # what int8 holds
    else:
        assert all(r["value_range"] is None for r in ranges.values())  # any finite value


def test_a_browser_body_as_text_plain_is_read_as_json(api):
    inputs = model_inputs(api.model, 1)
    body = json.dumps({"inputs": {k: v.tolist() for k, v in inputs.items()}})
    answer = call(
        api,
        "POST",
        f"/v1/models/{api.model}:predict",
        data=body,
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert answer.status_code == 200, answer.text
    not_json = call(
        api,
        "POST",
        f"/v1/models/{api.model}:predict",
        data="a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (not_json.status_code, not_json.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


# -- CORS through the local API (the function's answers and API Gateway's own) ---------------


def test_cors_preflight_needs_no_key_and_every_answer_carries_the_origin(api):
    origin = {"Origin": "https://app.example.com"}
    preflight = requests.options(
        f"{api.url}/v2/models/{api.model}/infer",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
        verify=api.ca,
        timeout=30,
    )  # no API key: browsers send none with a preflight
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "x-api-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
    inputs = model_inputs(api.model, 1)
    body = {
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": "FP32", "data": v.ravel().tolist()}
            for k, v in inputs.items()
        ]
    }
    answer = call(api, "POST", f"/v2/models/{api.model}/infer", json=body, headers=origin)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    # API Gateway's own answer (no key): its gateway response carries the header too
    refused = requests.post(
        f"{api.url}/v2/models/{api.model}/infer",
        json=body,
        headers=origin,
        verify=api.ca,
        timeout=30,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    other = requests.options(
        f"{api.url}/predict",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        verify=api.ca,
        timeout=30,
    )
    assert (other.status_code, other.json()["code"]) == (403, "CORS_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in other.headers
