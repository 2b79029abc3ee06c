"""The function's S3 client with the credentials a SnapStart function gets: no key variables,
a container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) that wants the token of
AWS_CONTAINER_AUTHORIZATION_TOKEN, here a real HTTP server on loopback; S3 is moto_server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.function_support import FIXTURE_DIR

pytestmark = pytest.mark.integration

TOKEN = "lambda-authorization-token"
CREDENTIALS = {
    "AccessKeyId": "ASIACONTAINER",
    "SecretAccessKey": "container-secret",
    "Token": "container-session-token",
    "Expiration": "2099-01-01T00:00:00Z",
}


@pytest.fixture
def credentials_endpoint():
    """A container credentials endpoint on a free loopback port: answers CREDENTIALS to the
    right Authorization header, 403 otherwise; records each request's header."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Authorization"))
            ok = self.headers.get("Authorization") == TOKEN and self.path == "/credentials"
            body = json.dumps(CREDENTIALS if ok else {"message": "denied"}).encode()
            self.send_response(200 if ok else 403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/credentials", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def snapstart_environment(endpoint: str, token: str) -> dict[str, str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **environ,
        "AWS_ENDPOINT_URL_S3": os.environ["AWS_ENDPOINT_URL_S3"],
        "AWS_REGION": "us-east-1",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
    }


def test_a_snapstart_function_reads_the_registry_with_the_endpoints_credentials(
    published_model, credentials_endpoint, tmp_path
):
    import dataclasses

    import s3_reader
    from config import load_settings
    from model_store import ModelStore
    from tests.function_support import template_environment

    endpoint, seen = credentials_endpoint
    environ = snapstart_environment(endpoint, TOKEN)
    settings = dataclasses.replace(
        load_settings(template_environment()),
        bucket=published_model["bucket"],
        cache_dir=str(tmp_path / "models"),
    )
    store = ModelStore(settings, lambda: s3_reader.create_client(environ))
    model = store.get()
    assert model.version == published_model["version"]
    assert model.size == (FIXTURE_DIR / "model.tflite").stat().st_size
    assert seen == [TOKEN]  # asked once, with the token, and cached for the three reads


def test_a_refused_token_is_an_error_that_names_the_endpoint(published_model, credentials_endpoint):
    import s3_reader

    endpoint, seen = credentials_endpoint
    client = s3_reader.create_client(snapstart_environment(endpoint, "wrong-token"))
    key = f"models/{published_model['name']}/latest.json"
    with pytest.raises(Exception, match="container credentials endpoint"):
        client.get_object(Bucket=published_model["bucket"], Key=key)
    assert seen and set(seen) == {"wrong-token"}
