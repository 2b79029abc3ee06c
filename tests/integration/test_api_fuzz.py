"""Schemathesis against the API's generated OpenAPI document (functions/inference/openapi.json),
through the local API over HTTPS (python -m local.api, the fixture model on moto_server): every
generated request, valid or not, is answered without a 5xx, with JSON, errors as
{"error", "code"}, and as the document describes (status codes, content types, schemas).

Bounded (examples per operation) and slow: `make test-slow`.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from errors import STATUS_BY_CODE
from tests.local_support import ROOT, local_api, publish_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OPENAPI = "functions/inference/openapi.json"
API_GATEWAY_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}  # its ANY


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-api")
    with local_api(folder, publish_fixture(s3_server, folder)) as running:
        yield running


# the document as committed (generated from the routes; a test holds it up to date)
schema = schemathesis.openapi.from_path(str(ROOT / OPENAPI))


@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_generated_request_is_answered_as_documented(case, api):
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
    # The body schema cannot say the served model's input shape (its metadata does): a
    # schema-valid body of another shape is a 400 INVALID_SHAPE by design.
    excluded = [positive_data_acceptance]
    if case.method.upper() not in API_GATEWAY_METHODS:
        # API Gateway answers a method it does not know (TRACE, QUERY) itself, with its
        # MISSING_AUTHENTICATION_TOKEN response (404 ROUTE_NOT_FOUND here), not 405; the local
        # API copies it. Every method API Gateway knows reaches the function: 405 + Allow.
        excluded.append(unsupported_method)
    case.validate_response(response, excluded_checks=excluded)
