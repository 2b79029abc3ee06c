"""The function's S3 client (s3_reader): where it takes credentials and its endpoint from, and
its read-ahead body. No network: the credentials endpoint is a function here (the integration
test runs a real one)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import s3_reader
from s3_reader import CredentialsError, LambdaCredentials

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ENDPOINT_DOCUMENT = {
    "AccessKeyId": "ASIAENDPOINT",
    "SecretAccessKey": "endpoint-secret",
    "Token": "endpoint-session-token",
    "Expiration": "2026-12-01T18:00:00Z",
}


class Endpoint:
    """A credentials endpoint as a function: records the requests, answers the document."""

    def __init__(self, document=ENDPOINT_DOCUMENT, error: Exception | None = None):
        self.document, self.error, self.requests = document, error, []

    def __call__(self, url: str, headers: dict, timeout: float) -> bytes:
        self.requests.append((url, headers, timeout))
        if self.error:
            raise self.error
        return json.dumps(self.document).encode()


def provider(environ: dict, endpoint: Endpoint | None = None) -> LambdaCredentials:
    return LambdaCredentials(environ, fetch=endpoint or Endpoint(), now=lambda: NOW)


def test_on_demand_functions_use_the_environment_variables_lambda_sets():
    environ = {
        "AWS_ACCESS_KEY_ID": "ASIAENV",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_SESSION_TOKEN": "env-token",
    }
    endpoint = Endpoint()
    credentials = provider(environ | {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://x"}, endpoint)()
    assert credentials["access_key_id"] == "ASIAENV"
    assert credentials["secret_access_key"] == "env-secret"
    assert credentials["token"] == "env-token"
    assert credentials["expires_at"] > NOW  # read again later, never cached for ever
    assert endpoint.requests == []  # the environment first, as AWS's SDKs


def test_the_environment_is_read_when_credentials_are_asked_for_not_before():
    environ: dict[str, str] = {}
    credentials = provider(environ)
    environ.update(AWS_ACCESS_KEY_ID="late", AWS_SECRET_ACCESS_KEY="s")
    assert credentials()["access_key_id"] == "late"
    assert credentials()["token"] is None


def test_snapstart_functions_use_the_container_endpoint_with_the_token_variable():
    endpoint = Endpoint()
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/2018-06-01/credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "lambda-token",
    }
    credentials = provider(environ, endpoint)()
    assert endpoint.requests == [
        (environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], {"Authorization": "lambda-token"}, 2.0)
    ]
    assert credentials == {
        "access_key_id": "ASIAENDPOINT",
        "secret_access_key": "endpoint-secret",
        "token": "endpoint-session-token",
        "expires_at": datetime(2026, 12, 1, 18, 0, tzinfo=UTC),
    }


def test_the_token_may_come_from_a_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    endpoint = Endpoint()
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    provider(environ, endpoint)()
    assert endpoint.requests[0][1] == {"Authorization": "file-token"}


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint(error=OSError("connection refused")),
        Endpoint(document={"Code": "AccessDenied"}),
        Endpoint(document=["not", "an", "object"]),
    ],
    ids=["unreachable", "no keys", "not an object"],
)
def test_an_endpoint_without_credentials_is_an_error_that_says_so(endpoint):
    environ = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds"}
    with pytest.raises(CredentialsError, match="container credentials endpoint"):
        provider(environ, endpoint)()


def test_no_credentials_at_all_names_what_is_looked_for():
    with pytest.raises(CredentialsError, match="AWS_ACCESS_KEY_ID.*AWS_CONTAINER_CREDENTIALS"):
        provider({})()


def test_on_demand_the_environments_credentials_go_to_the_store_as_they_are():
    environ = {
        "AWS_ACCESS_KEY_ID": "ASIAENV",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_SESSION_TOKEN": "env-token",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://x",  # the environment first, as the SDKs
    }
    options = s3_reader.store_options(environ)
    assert (options["access_key_id"], options["secret_access_key"]) == ("ASIAENV", "env-secret")
    assert options["session_token"] == "env-token" and "credential_provider" not in options
    without_token = s3_reader.store_options(
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    )
    assert "session_token" not in without_token


def test_without_them_the_container_endpoint_provider_is_used():
    options = s3_reader.store_options({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://x"})
    assert isinstance(options["credential_provider"], LambdaCredentials)
    assert "access_key_id" not in options


def test_the_standard_endpoint_setting_is_honoured_and_http_only_for_an_http_endpoint():
    local = s3_reader.store_options({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566"})
    assert local["endpoint"] == "http://127.0.0.1:4566"
    assert local["client_options"]["allow_http"] is True
    general = s3_reader.store_options({"AWS_ENDPOINT_URL": "https://s3.example.test"})
    assert general["endpoint"] == "https://s3.example.test"
    assert general["client_options"]["allow_http"] is False
    aws = s3_reader.store_options({"AWS_REGION": "eu-west-1"})
    assert "endpoint" not in aws and aws["region"] == "eu-west-1"
    assert aws["client_options"]["allow_http"] is False


def test_timeouts_and_attempts_are_bounded():
    options = s3_reader.store_options({})
    client = options["client_options"]
    assert client["connect_timeout"] == timedelta(seconds=2)
    assert client["read_timeout"] == timedelta(seconds=5)
    assert options["retry_config"]["max_retries"] == 1  # two attempts in all


def test_the_body_hands_over_every_chunk_in_order_then_the_end():
    body = s3_reader._Body(iter([b"ab", b"cd", b"e"]))
    assert [body.read(2), body.read(2), body.read(2), body.read(2)] == [b"ab", b"cd", b"e", b""]


def test_read_without_a_size_returns_the_rest():
    body = s3_reader._Body(iter([b"ab", b"cd"]))
    assert body.read(1) == b"ab"
    assert body.read() == b"cd"


def test_a_transfer_that_fails_midway_raises_in_the_reader():
    def chunks():
        yield b"first"
        raise TimeoutError("stalled")

    body = s3_reader._Body(chunks())
    assert body.read(5) == b"first"
    with pytest.raises(TimeoutError, match="stalled"):
        body.read(5)
    assert body.read(5) == b""


def test_closing_early_lets_the_read_ahead_thread_end():
    import threading

    produced = []

    def endless():
        while True:
            produced.append(1)
            yield b"x" * 10

    before = threading.active_count()
    body = s3_reader._Body(endless())
    assert body.read(10) == b"x" * 10
    body.close()
    for thread in threading.enumerate():
        if thread.name == "s3-read":
            thread.join(5)
    assert threading.active_count() == before
    assert len(produced) <= s3_reader.READ_AHEAD_CHUNKS + 3  # it stopped reading ahead
