"""Remake the API Gateway events in this folder: python events/make_events.py

Each event has the exact shape `sam local generate-event apigateway aws-proxy` prints (SAM CLI
1.170.0), with the body base64-encoded as that command does (`isBase64Encoded: true`); two are
left as plain text, as API Gateway sends JSON bodies, so both encodings stay covered.
`expected.json` says what each event must answer with the fixture model (version 1764300000)
loaded and MAX_INSTANCES=256: {"<file>": {"status": 400, "code": "INVALID_JSON"}} for errors,
{"status": 200, "labels": ["7"]} for predictions (one label per input). `env.json` is for
`sam local invoke --env-vars` and the Docker-free runners.
Uses only the stdlib, numpy and Pillow.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "tests" / "fixtures" / "mnist" / "digits.npz"
MODEL_NAME = "mnist"
MODEL_VERSION = 1764300000  # the fixture model's version
MAX_INSTANCES = 256

# `sam local generate-event apigateway aws-proxy` (SAM CLI 1.170.0), verbatim but for the fields
# every event sets below (body, isBase64Encoded, path, httpMethod, resource, pathParameters,
# Content-Type, requestContext's path/resourcePath/httpMethod/requestId; multiValueHeaders is
# derived from headers).
SAM_TEMPLATE: dict = {
    "body": None,
    "resource": "/{proxy+}",
    "path": "/path/to/resource",
    "httpMethod": "POST",
    "isBase64Encoded": True,
    "queryStringParameters": {"foo": "bar"},
    "multiValueQueryStringParameters": {"foo": ["bar"]},
    "pathParameters": {"proxy": "/path/to/resource"},
    "stageVariables": {"baz": "qux"},
    "headers": {
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8",
        "Accept-Encoding": "gzip, deflate, sdch",
        "Accept-Language": "en-US,en;q=0.8",
        "Cache-Control": "max-age=0",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Is-Mobile-Viewer": "false",
        "CloudFront-Is-SmartTV-Viewer": "false",
        "CloudFront-Is-Tablet-Viewer": "false",
        "CloudFront-Viewer-Country": "US",
        "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        "Upgrade-Insecure-Requests": "1",
        "User-Agent": "Custom User Agent String",
        "Via": "1.1 08f323deadbeefa7af34d5feb414ce27.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "cDehVQoZnx43VYQb9j2-nvCh-9z396Uhbp027Y2JvkCPNLmGJHqlaA==",
        "X-Forwarded-For": "127.0.0.1, 127.0.0.2",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    },
    "requestContext": {
        "accountId": "123456789012",
        "resourceId": "123456",
        "stage": "prod",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "requestTime": "09/Apr/2015:12:34:56 +0000",
        "requestTimeEpoch": 1428582896000,
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "accessKey": None,
            "sourceIp": "127.0.0.1",
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "Custom User Agent String",
            "user": None,
        },
        "path": "/prod/path/to/resource",
        "resourcePath": "/{proxy+}",
        "httpMethod": "POST",
        "apiId": "1234567890",
        "protocol": "HTTP/1.1",
    },
}

# The template's API events (contract): POST /predict, GET /health, ANY /v1/models/{proxy+},
# ANY /{proxy+}. API Gateway reports which resource matched and the {proxy+} part of the path.
TFSERVING_RESOURCE = "/v1/models/{proxy+}"


def resource_for(path: str) -> tuple[str, dict | None]:
    if path in ("/predict", "/health"):
        return path, None
    if path.startswith("/v1/models/"):
        return TFSERVING_RESOURCE, {"proxy": path[len("/v1/models/") :]}
    return "/{proxy+}", {"proxy": path.lstrip("/")}


def make_event(
    method: str,
    path: str,
    body: str | None = None,
    *,
    content_type: str | None = "application/json",
    base64_body: bool = True,
) -> dict:
    event = copy.deepcopy(SAM_TEMPLATE)
    resource, path_parameters = resource_for(path)
    encoded = body is not None and base64_body
    event.update(
        body=base64.b64encode(body.encode()).decode() if encoded else body,
        isBase64Encoded=encoded,
        resource=resource,
        path=path,
        httpMethod=method,
        pathParameters=path_parameters,
    )
    if body is not None and content_type:
        event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    context = event["requestContext"]
    context.update(path=f"/prod{path}", resourcePath=resource, httpMethod=method)
    return event


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def pick_digit(label: int = 7) -> np.ndarray:
    """A real held-out test digit that the fixture model classifies correctly."""
    digits = np.load(DIGITS)
    index = int(np.flatnonzero((digits["y"] == label) & (digits["expected"] == label))[0])
    return digits["x"][index]


def build() -> tuple[dict[str, dict], dict[str, dict]]:
    digit = pick_digit(7)
    instance = digit.astype(int).tolist()
    dumps = json.dumps
    out_of_range = digit.astype(int)
    out_of_range[14, 14] = 300
    events: dict[str, tuple[dict, dict]] = {
        # good requests
        "predict-instances.json": (
            make_event("POST", "/predict", dumps({"instances": [instance]})),
            {"status": 200, "labels": ["7"]},
        ),
        "predict-image.json": (
            make_event("POST", "/predict", dumps({"images": [png_base64(digit)]})),
            {"status": 200, "labels": ["7"]},
        ),
        "tfserving-predict.json": (
            make_event(
                "POST",
                f"/v1/models/{MODEL_NAME}:predict",
                dumps({"instances": [instance]}),
                base64_body=False,
            ),
            {"status": 200, "labels": ["7"]},
        ),
        "tfserving-predict-columnar.json": (
            make_event(
                "POST",
                f"/v1/models/{MODEL_NAME}/versions/{MODEL_VERSION}:predict",
                dumps({"signature_name": "serving_default", "inputs": [instance]}),
            ),
            {"status": 200, "labels": ["7"]},
        ),
        "tfserving-status.json": (make_event("GET", f"/v1/models/{MODEL_NAME}"), {"status": 200}),
        "tfserving-metadata.json": (
            make_event("GET", f"/v1/models/{MODEL_NAME}/metadata"),
            {"status": 200},
        ),
        "health.json": (make_event("GET", "/health"), {"status": 200}),
        # bad requests: each answers its stable code
        "bad-json.json": (
            make_event("POST", "/predict", '{"instances": [[0, 1, 2]'),
            {"status": 400, "code": "INVALID_JSON"},
        ),
        "bad-shape.json": (
            make_event("POST", "/predict", dumps({"instances": [instance[:27]]})),
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
            make_event("POST", "/predict", dumps({"instances": [[[True] * 28] * 28]})),
            {"status": 400, "code": "INVALID_TYPE"},
        ),
        "bad-content-type.json": (
            make_event(
                "POST", "/predict", dumps({"instances": [instance]}), content_type="text/plain"
            ),
            {"status": 415, "code": "UNSUPPORTED_MEDIA_TYPE"},
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
                f"/v1/models/{MODEL_NAME}:predict",
                dumps({"instances": [instance], "inputs": [instance]}),
            ),
            {"status": 400, "code": "AMBIGUOUS_INPUT"},
        ),
        "bad-signature.json": (
            make_event(
                "POST",
                f"/v1/models/{MODEL_NAME}:predict",
                dumps({"signature_name": "classify", "instances": [instance]}),
            ),
            {"status": 400, "code": "UNKNOWN_SIGNATURE"},
        ),
        "bad-unknown-model.json": (
            make_event("POST", "/v1/models/resnet:predict", dumps({"instances": [instance]})),
            {"status": 404, "code": "MODEL_NOT_FOUND"},
        ),
        "bad-unknown-version.json": (
            make_event("GET", f"/v1/models/{MODEL_NAME}/versions/1"),
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
    }
    for number, (event, _) in enumerate(events.values(), start=1):  # a distinct correlation id each
        event["requestContext"]["requestId"] = f"c6af9ac6-7b61-11e6-9a41-93e8dead{number:04x}"
    return {name: e for name, (e, _) in events.items()}, {
        name: x for name, (_, x) in events.items()
    }


ENV = {
    # `sam local invoke --env-vars events/env.json`: overrides the template's variables of the
    # function, pointing it at the local S3 (make s3-local). Metrics namespace and service name
    # stay the template's.
    "InferenceFunction": {
        "MODEL_BUCKET": "serverless-ml-models",
        "MODEL_PREFIX": "models",
        "MODEL_NAME": MODEL_NAME,
        "MODEL_VERSION": "latest",
        "MODEL_REFRESH_SECONDS": "300",
        "MAX_INSTANCES": str(MAX_INSTANCES),
        "MAX_BODY_BYTES": "1048576",
        "MODEL_CACHE_DIR": "/tmp/models",
    }
}


def main() -> None:
    events, expected = build()
    for name, event in events.items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    (HERE / "env.json").write_text(json.dumps(ENV, indent=2) + "\n")
    print(f"wrote {len(events)} events, expected.json and env.json to {HERE}")


if __name__ == "__main__":
    main()
