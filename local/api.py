"""``python -m local.api``: the template's API on https://127.0.0.1:PORT, no Docker.

SAM CLI's own local API service (``samcli.local.apigw.LocalApigwService``, what ``sam local
start-api`` runs) does the routing, builds the proxy event and maps the function's answer to
the HTTP response (payload format 1.0 for the REST API, 2.0 for the HTTP API: template parameter
ApiType selects which is served); the function runs in this project's execution environments
(``local.function.EnvironmentPool``: one process each, on demand, kept warm, one event at a
time), which take the place of sam's Docker runner.

Added here, because sam leaves them to the deployed API Gateway (each has a test):
- API keys (``x-api-key``) and the IAM authorizer's signature header, per (resource, method):
  sam merges the Api events of one path and function into one route, so its routes cannot
  say that POST /predict validates its body and needs a key while GET /health does not;
- the request validator (``RequestModel`` with ``ValidateBody``, JSON schema draft 4);
- API Gateway's own answers from the template's ``GatewayResponses`` (no route, API key,
  invalid body, too large, integration failure) instead of sam's ``{"message": ...}``;
- the page at ``GET /`` (an HTML answer of the function) gets this API's key as the value of
  its ``<input id="api-key">``, so it works at once (local only: the deployed page starts
  empty). Whoever can reach the loopback port can read the key there;
- what sam's event gets wrong for this template: one requestId (and request time) for every
  request (``RequestContext``'s defaults are computed once, at import), which would give every
  log line of the function the same correlation id; a body that is not UTF-8 (sam answers 502,
  API Gateway passes it on and the function answers 400); two identity keys of the event's
  shape (``accessKey``, ``cognitoIdentityId``).

- SigV4 (AWS_IAM): the Authorization header is checked against the signature the shell's own
  AWS credentials give (botocore's signer over the same request), so a request signed with
  other credentials, or not signed, is refused as API Gateway refuses it;
- the HTTP API's own answers where it answers itself ({"message": "Forbidden"} ...: an HTTP API
  has no gateway responses).

Not emulated: usage-plan throttling, IAM policies (any signature of the local credentials is
allowed), JWT validation (an HTTP API route with a JWT authorizer needs the header only), the
29 s integration timeout (the function's Timeout applies).
"""

from __future__ import annotations

import argparse
import functools
import hmac
import html
import json
import os
import re
import secrets
import signal
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import Response, g, request
from samcli.local.apigw.exceptions import LambdaResponseParseException
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.apigw.path_converter import PathConverter
from samcli.local.apigw.route import Route
from werkzeug.exceptions import HTTPException

from local import template as tpl
from local.cloudwatch import ENDPOINT_VARIABLE, EmfForwarder
from local.function import EnvironmentPool, FunctionError, load_function

DEFAULT_PORT = 3000
API_KEY_HEADER = "x-api-key"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for REST APIs
STATE_ROOT = tpl.ROOT / ".local"
# response type -> (API Gateway's status, x-amzn-ErrorType, the project's code without a
# customised response)
GATEWAY_RESPONSE_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException", "FORBIDDEN"),
    "INVALID_API_KEY": (403, "ForbiddenException", "FORBIDDEN"),
    "BAD_REQUEST_BODY": (400, "BadRequestException", "INVALID_REQUEST_BODY"),
    "REQUEST_TOO_LARGE": (413, "RequestTooLargeException", "PAYLOAD_TOO_LARGE"),
    "INTEGRATION_FAILURE": (502, "InternalServerErrorException", "INTERNAL_ERROR"),
}
# werkzeug's own errors -> the response API Gateway gives in their place
HTTP_ERRORS = {
    404: "MISSING_AUTHENTICATION_TOKEN",
    405: "MISSING_AUTHENTICATION_TOKEN",
    413: "REQUEST_TOO_LARGE",
    500: "INTEGRATION_FAILURE",
}
# What an HTTP API answers itself (it has no GatewayResponses): status, {"message": ...}
HTTP_API_ANSWERS = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Forbidden"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "BAD_REQUEST_BODY": (400, "Bad Request"),
    "REQUEST_TOO_LARGE": (413, "Request Entity Too Large"),
    "INTEGRATION_FAILURE": (500, "Internal Server Error"),
}
MESSAGES = {  # API Gateway's own $context.error.message for each
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "INVALID_API_KEY": "Forbidden",
    "BAD_REQUEST_BODY": "Invalid request body",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "INTEGRATION_FAILURE": "Internal server error",
}


# What a deployed API's answer says to do that has no meaning here: the template's
# INVALID_API_KEY message names the aws CLI command that reads the deployed key. The local API
# says where its own key is instead (the same status, headers and code).
LOCAL_KEY_HINT = (
    "use the key the local API printed when it started (choose one with API_KEY=... on "
    "make local-api or make demo)"
)


class GatewayError(Exception):
    """API Gateway answers itself (``response_type``); ``detail`` says why, for people."""

    def __init__(self, response_type: str, detail: str):
        super().__init__(detail)
        self.response_type = response_type
        self.detail = detail


def render(api: dict, response_type: str, detail: str, request_id: str, stage: str) -> Response:
    """API Gateway's answer as the API's GatewayResponses customise it (else DEFAULT_4XX/5XX,
    else the project's {"error", "code"} document; no route is then a 404)."""
    status, error_type, code = GATEWAY_RESPONSE_TYPES[response_type]
    responses = api.get("GatewayResponses") or {}
    specific = responses.get(response_type)
    config = specific or responses.get("DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX")
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    if config is None:
        if response_type == "MISSING_AUTHENTICATION_TOKEN":
            status, code = 404, "ROUTE_NOT_FOUND"
        return Response(json.dumps({"error": detail, "code": code}), status, headers)
    status = int((specific or {}).get("StatusCode") or status)
    templates = config.get("ResponseTemplates") or {}
    text = templates.get("application/json") or next(iter(templates.values()), None)
    message = MESSAGES[response_type]
    context = {  # $context substitution: all that gateway response templates support
        "error.message": message,
        "error.messageString": json.dumps(message),
        "error.responseType": response_type,
        "error.validationErrorString": detail,
        "requestId": request_id,
        "stage": stage,
    }
    body = json.dumps({"message": message})
    if text is not None:
        body = re.sub(r"\$context\.([\w.]*\w)", lambda m: context.get(m.group(1), ""), str(text))
    for name, value in ((config.get("ResponseParameters") or {}).get("Headers") or {}).items():
        headers[str(name)] = str(value).strip("'")
    return Response(body, status, headers)


def with_message(answer: Response, message: str) -> Response:
    """The answer with `message` as its {"error", "code"} document's error (anything else as
    it was)."""
    try:
        document = json.loads(answer.get_data(as_text=True))
    except ValueError:
        return answer
    if isinstance(document, dict) and "error" in document:
        answer.set_data(json.dumps({**document, "error": message}))
    return answer


PAGE_KEY_FIELD = re.compile(r'<input\b[^>]*?\bid="api-key"')


def fill_api_key(page: str, key: str) -> str:
    """The page with ``key`` as the value of its ``<input id="api-key">`` (the first one)."""
    value = html.escape(key, quote=True)
    return PAGE_KEY_FIELD.sub(lambda m: f'{m.group(0)} value="{value}"', page, count=1)


def body_errors(schema: dict | None, content_type: str | None, body: bytes) -> str | None:
    """Why a body fails the request validator, or None. Only JSON is checked (no
    Content-Type counts as JSON, as API Gateway assumes)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if schema is None or kind != "application/json":
        return None
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError) as exc:
        return f"[Invalid JSON: {exc}]"
    except RecursionError:  # nested deeper than Python's parser goes: the function answers
        return None  # (400 INVALID_JSON) rather than this emulator failing with a 500
    errors = _validator(json.dumps(schema, sort_keys=True)).iter_errors(document)
    messages = sorted(error.message for error in errors)
    return f"[{', '.join(messages)}]" if messages else None


@functools.cache
def _validator(schema: str):
    from jsonschema import Draft4Validator  # API Gateway's models are JSON schema draft 4

    return Draft4Validator(json.loads(schema))


class LocalApi(LocalApigwService):
    """sam's local API service with what API Gateway adds (see the module docstring)."""

    def __init__(self, template: tpl.Template, runner, api_key: str = "", port: int = 443):
        super().__init__(template.api(), runner, port=port, host="127.0.0.1")
        self.api_type = template.api_type
        self.methods = template.methods()
        self.apis = {m.api_id: template.api_properties(m.api_id) for m in self.methods.values()}
        self.api_key = api_key
        self.region = template.region

    def create(self):
        super().create()
        self._app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
        self._app.register_error_handler(GatewayError, self._answer)
        self._app.after_request(self._request_id_header)
        self._app.after_request(self._fill_page_key)

    def _construct_error_handling(self):
        """sam answers 403 {"message": ...}: API Gateway's responses, as the template says."""
        for status, kind in HTTP_ERRORS.items():
            self._app.register_error_handler(status, self._http_error(kind))

    def _http_error(self, kind: str):
        def handle(error: HTTPException) -> Response:
            detail = {
                "MISSING_AUTHENTICATION_TOKEN": f"no route for {request.method} {request.path}",
                "REQUEST_TOO_LARGE": f"request body larger than {MAX_REQUEST_BYTES} bytes",
            }.get(kind, "the local API failed; see its log")
            return self._answer(GatewayError(kind, detail))

        return handle

    def _answer(self, error: GatewayError) -> Response:
        if self.api_type == tpl.HTTP:
            status, message = HTTP_API_ANSWERS[error.response_type]
            if error.response_type == "MISSING_AUTHENTICATION_TOKEN" and not request.url_rule:
                status, message = 404, "Not Found"
            headers = {"Content-Type": "application/json"}
            return Response(json.dumps({"message": message}), status, headers)
        method = self._method() if request.url_rule else None
        api = self.apis.get(method.api_id) if method else next(iter(self.apis.values()), {})
        stage = self.api.stage_name or ""
        answer = render(api or {}, error.response_type, error.detail, self._request_id(), stage)
        if error.response_type == "INVALID_API_KEY":
            return with_message(answer, f"{error.detail}; {LOCAL_KEY_HINT}")
        return answer

    @staticmethod
    def _request_id() -> str:
        if "request_id" not in g:
            g.request_id = str(uuid.uuid4())
        return g.request_id

    def _request_id_header(self, response: Response) -> Response:
        response.headers["x-amzn-RequestId"] = self._request_id()
        return response

    def _fill_page_key(self, response: Response) -> Response:
        if (request.method, request.path, response.status_code) == ("GET", "/", 200) and (
            response.mimetype == "text/html"
        ):
            response.set_data(fill_api_key(response.get_data(as_text=True), self.api_key))
        return response

    def _method(self) -> tpl.Method | None:
        """The Api event of this request: the resource's own method beats its ANY."""
        resource = PathConverter.convert_path_to_api_gateway(request.endpoint)
        return self.methods.get((resource, request.method)) or self.methods.get((resource, "ANY"))

    def _request_handler(self, **kwargs):
        method = self._method()
        needs = method.authorization if method else None
        if needs and not request.headers.get("Authorization"):
            raise GatewayError(
                "MISSING_AUTHENTICATION_TOKEN", f"{request.method} {request.path} needs {needs}"
            )
        if method and method.iam:
            problem = sigv4_problem(request, self.region)
            if problem:
                raise GatewayError("MISSING_AUTHENTICATION_TOKEN", problem)
        key = request.headers.get(API_KEY_HEADER)
        if method and method.api_key_required:
            if not (key and hmac.compare_digest(key.encode(), self.api_key.encode())):
                raise GatewayError(
                    "INVALID_API_KEY",
                    f"{'wrong' if key else 'missing'} API key: {request.method} {request.path} "
                    f"needs the API key in the {API_KEY_HEADER} header",
                )
        if method and method.request_model:
            schema = (self.apis[method.api_id].get("Models") or {}).get(method.request_model)
            problems = body_errors(schema, request.content_type, request.get_data())
            if problems:
                raise GatewayError("BAD_REQUEST_BODY", problems)
        return super()._request_handler(**kwargs)

    def _generate_lambda_event(self, flask_request, route, method, endpoint):
        data = flask_request.get_data()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # sam would fail; API Gateway passes the text on
            flask_request._cached_data = data.decode("utf-8", errors="replace").encode()
        event = super()._generate_lambda_event(flask_request, route, method, endpoint)
        now = g.get("now") or time.time()
        when = datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        if event.get("version") == "2.0":  # the HTTP API's event (payload format 2.0)
            event["requestContext"].update(
                requestId=self._request_id(), timeEpoch=int(now * 1000), time=when
            )
            return event
        # keys API Gateway (and `sam local generate-event`) send that sam's event lacks
        event["requestContext"]["identity"].update(accessKey=None, cognitoIdentityId=None)
        event["requestContext"].update(
            requestId=self._request_id(), requestTimeEpoch=int(now * 1000), requestTime=when
        )
        return event

    def _invoke_lambda_function(self, name, event, tenant_id=None):
        try:
            output = super()._invoke_lambda_function(name, event, tenant_id)
        except FunctionError as exc:
            raise GatewayError("INTEGRATION_FAILURE", str(exc)) from None
        try:  # sam would answer its own 502 {"message": ...}: API Gateway's, as customised
            if isinstance(event, dict) and event.get("version") == "2.0":
                self._parse_v2_payload_format_lambda_output(
                    output, self.api.binary_media_types, request
                )
            else:
                self._parse_v1_payload_format_lambda_output(
                    output, self.api.binary_media_types, request, Route.API
                )
        except LambdaResponseParseException as exc:
            print(f"Malformed Lambda proxy response: {exc}", file=sys.stderr, flush=True)
            detail = f"Malformed Lambda proxy response: {exc}"
            raise GatewayError("INTEGRATION_FAILURE", detail) from None
        return output


def sigv4_problem(flask_request, region: str) -> str | None:
    """Why the request's SigV4 signature is not the one the shell's AWS credentials give
    (botocore's own signer over the same method, URL, headers and body, at the request's own
    X-Amz-Date), or None when it is."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    header = flask_request.headers.get("Authorization", "")
    if not header.startswith("AWS4-HMAC-SHA256 "):
        return "the Authorization header is not an AWS Signature Version 4 signature"
    fields = dict(part.strip().split("=", 1) for part in header[17:].split(",") if "=" in part)
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        return "no AWS credentials in this shell to check the signature against"
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or scope[0] != credentials.access_key:
        return "the signature is not made with this shell's AWS access key"
    signed = fields.get("SignedHeaders", "").split(";")
    headers = {k: v for k, v in flask_request.headers.items() if k.lower() in signed}
    expected = AWSRequest(
        method=flask_request.method,
        url=flask_request.url,
        data=flask_request.get_data(),
        headers=headers,
    )
    signer = SigV4Auth(credentials, scope[3], scope[2] or region)
    # the signing steps of SigV4Auth.add_auth, at the request's own time, not now
    expected.context["timestamp"] = flask_request.headers.get("X-Amz-Date", "")
    canonical = signer.canonical_request(expected)
    signature = signer.signature(signer.string_to_sign(expected, canonical), expected)
    if not hmac.compare_digest(signature, fields.get("Signature", "")):
        return "the SigV4 signature does not match the request"
    return None


def make_certificates(state: Path) -> tuple[Path, Path]:
    """A new CA (``ca.pem``, what clients verify against) and a server certificate for
    localhost, 127.0.0.1 and ::1, with its key (``server.pem``, mode 0600), from trustme."""
    import trustme

    ca = trustme.CA(organization_name="serverless-ml local")
    ca.cert_pem.write_to_path(str(state / "ca.pem"))
    server = state / "server.pem"
    server.touch(mode=0o600)
    server.chmod(0o600)
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(server))
    return state / "ca.pem", server


def bind(port: int) -> socket.socket:
    """The listening socket on 127.0.0.1:port, or SystemExit naming the problem."""
    # proto IPPROTO_TCP, as getaddrinfo gives it: asyncio turns Nagle's algorithm off
    # (TCP_NODELAY) only on sockets that say they are TCP; without it every response whose
    # headers and body are written apart waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"local.api: cannot listen on 127.0.0.1:{port}: {exc.strerror} "
            "(is another server using it? choose another --port)"
        ) from None
    sock.listen(2048)
    return sock


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.api",
        description="Serve template.yaml's API on https://127.0.0.1:PORT (sam local "
        "start-api's own service, without Docker).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY") or None,
        help="the key clients send in x-api-key (default: $API_KEY, else a new one, printed)",
    )
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    tpl.add_function_arguments(parser)
    parser.add_argument(
        "--environments",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="execution environments per function at most, i.e. concurrent requests "
        "(default: CPUs, at most 4: %(default)s)",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="certificate and function log (default: .local/api-PORT/)"
    )
    parser.add_argument("--log-file", help="the functions' log (default: STATE_DIR/function.log)")
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1..65535, got {args.port}")
    if args.environments < 1:
        parser.error(f"--environments must be >= 1, got {args.environments}")
    return args


def describe(service: LocalApi, functions: dict, base_url: str, ca: Path | None, log: str) -> str:
    kind = {tpl.HTTP: "HTTP API, payload format 2.0"}.get(
        service.api_type, "REST API, payload format 1.0"
    )
    lines = [f"Local API ({kind}; stage {service.api.stage_name}) on {base_url}:"]
    for (path, method), settings in sorted(service.methods.items()):
        needs = [
            name
            for name, on in (
                ("API key", settings.api_key_required),
                ("SigV4", settings.iam),
                ("JWT", settings.jwt),
                ("body validated", settings.request_model),
            )
            if on
        ]
        lines.append(f"  {method:<6} {path:<22} {', '.join(needs) or 'open'}")
    if ca:
        lines += [f"CA certificate: {ca}", f"  curl --cacert {ca} {base_url}/health"]
    if any(m.api_key_required for m in service.methods.values()):
        lines.append(f"API key (header {API_KEY_HEADER}): {service.api_key}")
    if ("/", "GET") in service.methods:
        lines.append(f"Page to draw on (the API key filled in): {base_url}/")
    lines.append(f"Function log (JSON logs, EMF metrics, START/END/REPORT): {log}")
    if service.lambda_runner.forward is not None:
        endpoint = os.environ.get(ENDPOINT_VARIABLE)
        lines.append(f"EMF metrics forwarded to the local CloudWatch at {endpoint}")
    for function in functions.values():
        lines.append(
            f"{function.name} ({function.handler}, {function.runtime} on local Python "
            f"{sys.version.split()[0]}), up to {service.lambda_runner.size} environments, "
            "started on demand; environment: "
            + " ".join(f"{k}={function.environment[k]}" for k in function.variables)
        )
    return "\n".join(lines)


def access_log(response: Response) -> Response:
    print(
        f'{request.remote_addr} "{request.method} {request.path}" {response.status_code}',
        file=sys.stderr,
        flush=True,
    )
    return response


def _terminate(signum, frame):
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sock = bind(args.port)  # first: a busy port is the most likely problem
    pool = log = None
    try:
        try:
            template = tpl.Template(
                args.template, tpl.parse_parameter_overrides(args.parameter_overrides)
            )
            env_vars = tpl.load_env_vars(args.env_vars)
            names = sorted({route.function_name for route in template.api().routes})
            if not names:
                raise tpl.TemplateError(f"{args.template} has no Api events")
            functions = {n: load_function(template, n, env_vars, warn=_warn) for n in names}
        except (tpl.TemplateError, FunctionError) as exc:
            print(f"local.api: {exc}", file=sys.stderr)
            return 2
        state = args.state_dir or STATE_ROOT / f"api-{args.port}"
        state.mkdir(parents=True, exist_ok=True)
        certificates = None if args.http else make_certificates(state)
        log_path = Path(args.log_file) if args.log_file else state / "function.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")  # one run per log
        # append mode (O_APPEND): each line of each environment lands whole
        log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed in finally
        pool = EnvironmentPool(
            functions,
            log,
            args.environments,
            owner=f"local-api:{args.port}",
            forward=EmfForwarder.from_environment(),
        )
        service = LocalApi(template, pool, args.api_key or secrets.token_urlsafe(30), args.port)
        service.create()
        if not args.quiet:
            service._app.after_request(access_log)
        base_url = f"{'http' if args.http else 'https'}://127.0.0.1:{args.port}"
        ca = certificates[0].resolve() if certificates else None
        print(describe(service, functions, base_url, ca, str(log_path.resolve())), flush=True)

        import uvicorn
        from a2wsgi import WSGIMiddleware

        # uvicorn's HTTP/1.1 keeps connections alive (werkzeug's dev server closes each one,
        # which costs a TLS handshake per request); a2wsgi runs the WSGI app in threads
        config = uvicorn.Config(
            WSGIMiddleware(service._app, workers=max(10, 2 * args.environments)),
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=str(certificates[1]) if certificates else None,
            timeout_graceful_shutdown=5,
        )
        signal.signal(signal.SIGTERM, _terminate)  # uvicorn re-raises it after shutting down
        print("Ready. Ctrl-C stops.", flush=True)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    finally:
        if pool is not None:
            pool.close()
        if log is not None:
            log.close()
        sock.close()


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
