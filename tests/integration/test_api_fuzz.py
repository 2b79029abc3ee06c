"""Schemathesis against the API's OpenAPI document as the API serves it (GET /openapi.json: the
generated document with the served model's request bodies), through the local API over HTTPS
(python -m local.api, the fixture model on moto_server): every generated request, valid or
not, is answered without a 5xx, with JSON, errors as {"error", "code"}, as the document
describes (status codes, content types, schemas), and a body the document allows is accepted
(positive data acceptance) except where JSON Schema cannot say what the API refuses, as the
bodies' descriptions state: images that do not decode, pixels all fractions within [0, 1],
and a v2 tensor whose data does not have the values its shape says.

Bounded (examples per operation) and slow: `make test-slow`.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from errors import STATUS_BY_CODE
from tests.local_support import local_api, publish_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]
API_GATEWAY_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}  # its ANY


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-api")
    with local_api(folder, publish_fixture(s3_server, folder)) as running:
        yield running


def served_operations(api) -> list:
    """The operations of the document as the API serves it, once the model is loaded (the
    fixture's GET /health/deep has waited for it). (schemathesis.pytest.from_fixture, made for
    this, fails under our pytest: 'Function' object has no attribute '_nodeid'.)"""
    import requests

    document = requests.get(f"{api.url}/openapi.json", verify=api.ca, timeout=30).json()
    assert "served now" in document["info"]["description"]
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def beyond_json_schema(case) -> bool:
    """A body the API refuses by a rule JSON Schema cannot state (the module docstring)."""
    body = case.body if isinstance(case.body, dict) else {}
    if "images" in body or "/v2/" in case.formatted_path:
        return True
    instances = body.get("instances", body.get("inputs"))
    try:
        pixels = np.asarray(instances, dtype=float)
    except (TypeError, ValueError):
        return False
    fractions = pixels.size and pixels.min() >= 0 and pixels.max() <= 1
    return bool(fractions and np.any(pixels != np.round(pixels)))


def test_every_generated_request_is_answered_as_documented(api, monkeypatch):
    # schemathesis' ignored_auth check probes an accepted request again without the key, with
    # requests' own verification: the local API's CA for it too
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", api.ca)
    operations = served_operations(api)
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def answered_as_documented(case):
            check(case, api)

        answered_as_documented()


def check(case, api) -> None:
    case.headers = {**(case.headers or {}), "x-api-key": api.key}  # the caller's key
    response = case.call(base_url=api.url, verify=api.ca, timeout=60)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    content_type = (response.headers.get("content-type") or [""])[0]  # values are lists here
    if content_type.startswith("text/html"):  # GET /: the page
        assert response.status_code == 200 and case.formatted_path == "/"
        return
    if case.method.upper() == "HEAD":  # no body by definition
        assert not response.content
        return
    try:
        document = response.json()
    except ValueError:
        raise AssertionError(
            f"not JSON: {case.method} {case.formatted_path} -> {response.status_code} "
            f"{response.headers} {response.content[:200]!r}"
        ) from None
    if response.status_code >= 400:
        assert set(document) == {"error", "code"}, document
        assert STATUS_BY_CODE.get(document["code"]) == response.status_code or document["code"] in (
            "INVALID_REQUEST_BODY",
            "FORBIDDEN",
            "PAYLOAD_TOO_LARGE",
            "ROUTE_NOT_FOUND",
        )
    excluded = [positive_data_acceptance] if beyond_json_schema(case) else []
    if case.method.upper() not in API_GATEWAY_METHODS:
        # API Gateway answers a method it does not know (TRACE, QUERY) itself, with its
        # MISSING_AUTHENTICATION_TOKEN response (404 ROUTE_NOT_FOUND here), not 405; the local
        # API copies it. Every method API Gateway knows reaches the function: 405 + Allow.
        excluded.append(unsupported_method)
    case.validate_response(response, excluded_checks=excluded)
