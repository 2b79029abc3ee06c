"""Remake the API Gateway events in this folder: ``make events``; or make a model's own events
from its manifest: ``make events NAME=shapes`` (its newest artifact, or ``ARTIFACT=folder``)
writes them into ``ARTIFACT/events/`` for ``make invoke EVENT=...``.

Each event is what ``python -m local.api`` sends the function for that request to
template.yaml, built by the local API's own builder (``local.events.api_event``, SAM CLI's
event constructor; the shape ``sam local generate-event apigateway aws-proxy`` prints), with a
fixed request id and time so that the files only change when the requests do. Most bodies are
base64-encoded, as ``sam local generate-event`` encodes them (``isBase64Encoded: true``); two
stay plain text, as API Gateway sends JSON, so both encodings stay covered. ``expected.json``
says what each event must answer with the fixture model loaded and the template's defaults:
{"<file>": {"status": 400, "code": "INVALID_JSON"}} for errors, {"status": 200, "labels":
["7"]} for predictions (one label per input).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # a script of the repository: `local` is next to it

from local.events import api_event  # noqa: E402
from local.template import Template  # noqa: E402

FIXTURE = HERE.parent / "tests" / "fixtures" / "mnist"
DIGITS = FIXTURE / "digits.npz"
TEMPLATE = Template()
MAX_INSTANCES = int(TEMPLATE.default("MaxInstances"))
NOW = 1764300000.0  # any fixed time would do: the files change only when the requests do


def make_event(
    method: str,
    path: str,
    body: str | None = None,
    *,
    content_type: str | None = "application/json",
    base64_body: bool = True,
    api_type: str = "rest",
) -> dict:
    headers = {"Content-Type": content_type} if body is not None and content_type else {}
    return api_event(
        method, path, body, headers=headers, base64_body=base64_body, now=NOW, api_type=api_type
    )


def scheduled_event() -> dict:
    """What the drift monitor's EventBridge schedule sends (MonitorFunction), built by SAM
    CLI's own generator: the shape `sam local generate-event cloudwatch scheduled-event`
    prints. The monitor judges the window before the moment it runs, whatever the event says."""
    from samcli.lib.generated_sample_events.events import Events

    events = Events()
    tags = events.event_mapping["cloudwatch"]["scheduled-event"]["tags"]
    # the command line's options (--account-id ...) with their defaults, as click passes them
    values = {tag.replace("-", "_"): spec["default"] for tag, spec in tags.items()}
    values["rule"] = "MonitorSchedule"
    return json.loads(events.generate_event("cloudwatch", "scheduled-event", values))


def png_base64(pixels: np.ndarray) -> str:
    pixels = np.asarray(pixels, np.uint8)
    pixels = pixels.squeeze(-1) if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def pick_digit(label: int = 7) -> np.ndarray:
    """A real held-out test digit that the fixture model classifies correctly."""
    digits = np.load(DIGITS)
    index = int(np.flatnonzero((digits["y"] == label) & (digits["expected"] == label))[0])
    return digits["x"][index]


def pick_example(manifest: dict, model: Path) -> tuple[np.ndarray, str]:
    """A held-out example of a model's own test split that it answers right, and its label."""
    from mlcore.predictor import Predictor
    from training.data import held_out_split

    x, y = held_out_split(manifest)
    predicted = Predictor.from_file(str(model)).predict(x.astype(np.float32)).argmax(axis=1)
    right = np.flatnonzero(predicted == y)
    if not len(right):
        raise SystemExit("the model answers no test example right: nothing to build events on")
    return x[right[0]], manifest["labels"][int(y[right[0]])]


def v2_tensor(example: np.ndarray) -> dict:
    """One image of an image classifier as an Open Inference Protocol input: its signature's
    input ("image" for the models trained here), shape (1, H, W, C), flat FP32 pixels."""
    pixels = example.reshape(1, *example.shape[:2], -1)
    return {
        "name": "image",
        "shape": list(pixels.shape),
        "datatype": "FP32",
        "data": pixels.astype(int).ravel().tolist(),
    }


def build(
    example: np.ndarray, label: str, name: str, version: int
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Every event of the API for one model (name, version) and one example it answers with
    `label`; the expectations a test holds the function to."""
    instance = example.astype(int).tolist()
    dumps = json.dumps
    out_of_range = example.astype(int)
    out_of_range.flat[out_of_range.size // 2] = 300
    truncated = example.reshape(-1)[:-1].astype(int).tolist()
    # the version labelled stable, and the default signature named by "" (as TF Serving means it)
    stable_predict = f"/v1/models/{name}/labels/stable:predict"
    default_signature = {"signature_name": "", "instances": [instance]}
    events: dict[str, tuple[dict, dict]] = {
        # good requests
        "predict-instances.json": (
            make_event("POST", "/predict", dumps({"instances": [instance]})),
            {"status": 200, "labels": [label]},
        ),
        "predict-image.json": (
            make_event("POST", "/predict", dumps({"images": [png_base64(example)]})),
            {"status": 200, "labels": [label]},
        ),
        "tfserving-predict.json": (
            make_event(
                "POST",
                f"/v1/models/{name}:predict",
                dumps({"instances": [instance]}),
                base64_body=False,
            ),
            {"status": 200, "labels": [label]},
        ),
        "tfserving-predict-columnar.json": (
            make_event(
                "POST",
                f"/v1/models/{name}/versions/{version}:predict",
                dumps({"signature_name": "serving_default", "inputs": [instance]}),
            ),
            {"status": 200, "labels": [label]},
        ),
        # a browser's fetch sends JSON as text/plain: read as JSON, as TF Serving reads it
        "predict-text-plain.json": (
            make_event(
                "POST", "/predict", dumps({"instances": [instance]}), content_type="text/plain"
            ),
            {"status": 200, "labels": [label]},
        ),
        "tfserving-predict-label.json": (
            make_event("POST", stable_predict, dumps(default_signature)),
            {"status": 200, "labels": [label]},
        ),
        "tfserving-status.json": (make_event("GET", f"/v1/models/{name}"), {"status": 200}),
        "tfserving-metadata.json": (
            make_event("GET", f"/v1/models/{name}/metadata"),
            {"status": 200},
        ),
        "v2-metadata.json": (make_event("GET", f"/v2/models/{name}"), {"status": 200}),
        "v2-infer.json": (
            make_event(
                "POST",
                f"/v2/models/{name}/infer",
                dumps({"id": "one", "inputs": [v2_tensor(example)]}),
            ),
            {"status": 200, "labels": [label]},
        ),
        "health.json": (make_event("GET", "/health"), {"status": 200}),
        # bad requests: each answers its stable code
        "bad-json.json": (
            make_event("POST", "/predict", '{"instances": [[0, 1, 2]'),
            {"status": 400, "code": "INVALID_JSON"},
        ),
        "bad-shape.json": (
            make_event("POST", "/predict", dumps({"instances": [truncated]})),
            {"status": 400, "code": "INVALID_SHAPE"},
        ),
        # NaN is not JSON, but Python's json (and TF Serving) accept the token: we refuse it.
        "bad-nan.json": (
            make_event("POST", "/predict", '{"instances": [[NaN, 0, 0]]}', base64_body=False),
            {"status": 400, "code": "NON_FINITE_VALUE"},
        ),
        "bad-out-of-range.json": (
            make_event("POST", "/predict", dumps({"instances": [out_of_range.tolist()]})),
            {"status": 400, "code": "VALUE_OUT_OF_RANGE"},
        ),
        "bad-type.json": (
            make_event("POST", "/predict", dumps({"instances": [[True] * example.size]})),
            {"status": 400, "code": "INVALID_TYPE"},
        ),
        # a body that is not JSON and says so
        "bad-content-type.json": (
            make_event(
                "POST",
                "/predict",
                "instances=7",
                content_type="application/x-www-form-urlencoded",
            ),
            {"status": 415, "code": "UNSUPPORTED_MEDIA_TYPE"},
        ),
        "bad-v2-datatype.json": (
            make_event(
                "POST",
                f"/v2/models/{name}/infer",
                dumps({"inputs": [{**v2_tensor(example), "datatype": "INT64"}]}),
            ),
            {"status": 400, "code": "INVALID_TYPE"},
        ),
        "bad-missing-field.json": (
            make_event("POST", "/predict", dumps({"instance": [instance]})),
            {"status": 400, "code": "MISSING_FIELD"},
        ),
        "bad-empty-batch.json": (
            make_event("POST", "/predict", dumps({"instances": []})),
            {"status": 400, "code": "EMPTY_BATCH"},
        ),
        # the count is checked before anything else about the instances, so they can be tiny
        "bad-too-many.json": (
            make_event("POST", "/predict", dumps({"instances": [[0]] * (MAX_INSTANCES + 1)})),
            {"status": 413, "code": "TOO_MANY_INSTANCES"},
        ),
        "bad-image.json": (
            make_event(
                "POST",
                "/predict",
                dumps({"images": [base64.b64encode(b"this is not a PNG").decode()]}),
            ),
            {"status": 400, "code": "INVALID_IMAGE"},
        ),
        "bad-ambiguous.json": (
            make_event(
                "POST",
                f"/v1/models/{name}:predict",
                dumps({"instances": [instance], "inputs": [instance]}),
            ),
            {"status": 400, "code": "AMBIGUOUS_INPUT"},
        ),
        "bad-signature.json": (
            make_event(
                "POST",
                f"/v1/models/{name}:predict",
                dumps({"signature_name": "classify", "instances": [instance]}),
            ),
            {"status": 400, "code": "UNKNOWN_SIGNATURE"},
        ),
        "bad-unknown-model.json": (
            make_event("POST", "/v1/models/resnet:predict", dumps({"instances": [instance]})),
            {"status": 404, "code": "MODEL_NOT_FOUND"},
        ),
        "bad-unknown-version.json": (
            make_event("GET", f"/v1/models/{name}/versions/1"),
            {"status": 404, "code": "VERSION_NOT_FOUND"},
        ),
        "bad-route.json": (
            make_event("GET", "/v2/models"),
            {"status": 404, "code": "ROUTE_NOT_FOUND"},
        ),
        "bad-method.json": (
            make_event("GET", "/predict"),
            {"status": 405, "code": "METHOD_NOT_ALLOWED"},
        ),
        # not an API Gateway request at all (a console test event, a mistaken trigger): the
        # function still answers, in the proxy integration's shape
        "bad-event.json": ({}, {"status": 400, "code": "UNSUPPORTED_EVENT"}),
        # the drift monitor's schedule (`make invoke FUNCTION=MonitorFunction EVENT=...`); sent
        # to the inference function by mistake, it answers like any foreign event
        "monitor-schedule.json": (scheduled_event(), {"status": 400, "code": "UNSUPPORTED_EVENT"}),
        # the same requests through the HTTP API (ApiType http): payload format 2.0
        "http-predict-instances.json": (
            make_event("POST", "/predict", dumps({"instances": [instance]}), api_type="http"),
            {"status": 200, "labels": [label]},
        ),
        "http-predict-image.json": (
            make_event(
                "POST",
                "/predict",
                dumps({"images": [png_base64(example)]}),
                base64_body=True,
                api_type="http",
            ),
            {"status": 200, "labels": [label]},
        ),
        "http-tfserving-metadata.json": (
            make_event("GET", f"/v1/models/{name}/metadata", api_type="http"),
            {"status": 200},
        ),
        "http-health.json": (make_event("GET", "/health", api_type="http"), {"status": 200}),
        "http-bad-method.json": (
            make_event("GET", "/predict", api_type="http"),
            {"status": 405, "code": "METHOD_NOT_ALLOWED"},
        ),
        "http-bad-json.json": (
            make_event("POST", "/predict", '{"instances": [[0, 1, 2]', api_type="http"),
            {"status": 400, "code": "INVALID_JSON"},
        ),
        # the deep health (behind the API's auth: it loads the model and waits); health.json
        # is the open, shallow one (here last: the request ids above stay as they were)
        "health-deep.json": (make_event("GET", "/health/deep"), {"status": 200}),
    }
    for number, (event, _) in enumerate(events.values(), start=1):  # a distinct correlation id each
        if "requestContext" in event:
            event["requestContext"]["requestId"] = f"c6af9ac6-7b61-11e6-9a41-93e8dead{number:04x}"
    return {name: e for name, (e, _) in events.items()}, {
        name: x for name, (_, x) in events.items()
    }


def main(argv: list[str] | None = None) -> None:
    from training.cli import add_artifact_arguments, chosen_artifact

    parser = argparse.ArgumentParser(prog="events/make_events.py", description=__doc__)
    add_artifact_arguments(parser)
    parser.add_argument("--model", action="store_true", help="a model's own events (see above)")
    args = parser.parse_args(argv)
    if not args.model:  # the project's own events: the fixture model and a real "7"
        manifest = json.loads((FIXTURE / "manifest.json").read_text())
        example, label, out = pick_digit(7), "7", HERE
    else:
        artifact = chosen_artifact(args)
        manifest = json.loads((artifact / "manifest.json").read_text())
        example, label = pick_example(manifest, artifact / "model.tflite")
        out = artifact / "events"
        out.mkdir(exist_ok=True)
    events, expected = build(example, label, manifest["name"], manifest["version"])
    for filename, event in events.items():
        (out / filename).write_text(json.dumps(event, indent=2) + "\n")
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(events)} events and expected.json to {out}")


if __name__ == "__main__":
    main()
