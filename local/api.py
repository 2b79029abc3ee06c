"""``python -m local.api``: the template's REST API on https://127.0.0.1:PORT, no Docker.

What ``sam local start-api`` does, plus what it leaves to the deployed API Gateway: every
``Api`` event of template.yaml becomes a route (API Gateway's resolution on the
resource+method pair, ``local.apigw``); the API key is enforced where the template
requires it (``x-api-key``); a ``RequestModel`` with ``ValidateBody`` is validated; API
Gateway's own answers (no route, API key, invalid body, too large, integration failure)
come from the template's ``GatewayResponses``; each request becomes the proxy event API
Gateway sends and runs in one of N execution environments of the function
(``local.function``: its own process, environment, /tmp and timeout; on demand, kept
warm, one event at a time each); the function's answer becomes the HTTP response. HTTP
and TLS are uvicorn's (h11 + the ssl module) with starlette's request/response objects;
the certificate is made at start by ``local.tls``.

Why processes and not a thread with a lock: a Lambda execution environment has its own
module state, environment variables and /tmp, and can be killed at its timeout; only a
process gives all four, and N of them serve N requests at once on N cores, as N Lambda
environments would. The API's own work (TLS, HTTP, events) is one asyncio process.

Not emulated: usage-plan throttling and quotas, SigV4 verification (AWS_IAM routes only
need an Authorization header), Lambda/Cognito authorizers (such routes are open, with a
warning), CORS preflight, the 29 s integration timeout (the function's Timeout applies).
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from local import apigw
from local import template as tpl
from local.function import EnvironmentPool, FunctionError, LocalFunction, load_function

DEFAULT_PORT = 3000
API_KEY_HEADER = "x-api-key"
STATE_ROOT = tpl.ROOT / ".local"


def default_environments() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.api",
        description="Serve template.yaml's API on https://127.0.0.1:PORT (as sam local "
        "start-api, without Docker).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port on 127.0.0.1 (default %(default)s); fails if busy",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY") or None,
        help="the key clients send in x-api-key (default: $API_KEY, else a "
        "new random key, printed)",
    )
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    tpl.add_function_arguments(parser)
    parser.add_argument(
        "--environments",
        type=int,
        default=default_environments(),
        help="most execution environments at once, i.e. concurrent "
        "requests (default: CPUs, at most 4: %(default)s)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the certificate and the function log go (default: .local/api-PORT/)",
    )
    parser.add_argument(
        "--log-file",
        default=None,
        help="the function's log (default: STATE_DIR/function.log; - for stderr)",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1..65535, got {args.port}")
    if args.environments < 1:
        parser.error(f"--environments must be >= 1, got {args.environments}")
    return args


class LocalApi:
    """The ASGI application: API Gateway in front of the function's environments."""

    def __init__(
        self,
        table: apigw.RouteTable,
        apis: dict[str, tpl.ApiSpec],
        pool: EnvironmentPool,
        api_key: str,
        scheme: str,
        port: int,
        access_log: bool = True,
    ):
        self.table = table
        self.apis = apis
        self.pool = pool
        self.api_key = api_key
        self.scheme = scheme
        self.port = port
        self.access_log = access_log
        # for answers before a route (and so an API) is known: the API of the first route
        self.default_api = apis[table.routes[0].api_id]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # lifespan and websockets: nothing to do
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        response = await self.handle(request, request_id)
        response.headers["x-amzn-RequestId"] = request_id
        await response(scope, receive, send)
        if self.access_log:
            client = scope.get("client") or ("-", 0)
            print(
                f'{client[0]} "{scope["method"]} {apigw.printable(scope["path"])}" '
                f"{response.status_code} {(time.perf_counter() - started) * 1000:.1f} ms "
                f"{request_id}",
                file=sys.stderr,
                flush=True,
            )

    def gateway(
        self,
        api: tpl.ApiSpec,
        response_type: str,
        message: str,
        request_id: str,
        detail: str = "",
        route: tpl.RouteSpec | None = None,
    ) -> Response:
        answer = apigw.gateway_response(
            api,
            response_type,
            message,
            detail=detail,
            route_path=route.path if route else None,
            request_id=request_id,
            stage=api.stage_name,
        )
        response = Response(answer.body, status_code=answer.status)
        for name, value in answer.headers:
            response.headers.append(name, value)
        return response

    async def _body(self, request: Request) -> bytes | None:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > apigw.MAX_REQUEST_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, request: Request, request_id: str) -> Response:
        scope = request.scope
        method, path = scope["method"], scope["path"]
        match = self.table.match(method, path)
        if match is None:
            allowed = ", ".join(f"{r.method} {r.path}" for r in self.table.routes)
            return self.gateway(
                self.default_api,
                "MISSING_AUTHENTICATION_TOKEN",
                "Missing Authentication Token",
                request_id,
                f"no route for {method} {apigw.printable(path)}; this API has: {allowed}",
            )
        route, api = match.route, self.apis[match.route.api_id]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        if route.authorizer == "AWS_IAM" and not apigw.header_value(headers, "Authorization"):
            # a signature is required; whether it is valid is not checked locally
            return self.gateway(
                api,
                "MISSING_AUTHENTICATION_TOKEN",
                "Missing Authentication Token",
                request_id,
                f"{route.method} {route.path} needs a SigV4-signed request",
                route,
            )
        key = apigw.header_value(headers, API_KEY_HEADER)
        if route.api_key_required and not (
            key and hmac.compare_digest(key.encode(), self.api_key.encode())
        ):
            reason = "wrong" if key else "missing"
            return self.gateway(
                api,
                "INVALID_API_KEY",
                "Forbidden",
                request_id,
                f"{reason} API key: {route.method} {route.path} needs the API "
                f"key in the {API_KEY_HEADER} header",
                route,
            )
        body = await self._body(request)
        if body is None:
            return self.gateway(
                api,
                "REQUEST_TOO_LARGE",
                "Request Too Long",
                request_id,
                f"request body larger than API Gateway's limit of {apigw.MAX_REQUEST_BYTES} bytes",
                route,
            )
        problems = apigw.body_errors(api, route, apigw.header_value(headers, "Content-Type"), body)
        if problems:
            return self.gateway(
                api, "BAD_REQUEST_BODY", "Invalid request body", request_id, problems, route
            )
        client = scope.get("client") or ("127.0.0.1", 0)
        http_request = apigw.HttpRequest(
            method=method,
            path=path,
            query_string=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body,
            client_ip=client[0],
            scheme=self.scheme,
            port=self.port,
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        event = apigw.build_event(
            http_request,
            match,
            api,
            request_id=request_id,
            api_key=key if route.api_key_required else None,
        )
        try:
            result = await self.pool.invoke(
                event, str(uuid.uuid4()), event["headers"].get("X-Amzn-Trace-Id")
            )
        except FunctionError as exc:
            return self.gateway(
                api,
                "INTEGRATION_FAILURE",
                "Internal server error",
                request_id,
                f"the function could not run: {exc}",
                route,
            )
        if not result.ok:
            return self.gateway(
                api,
                "INTEGRATION_FAILURE",
                "Internal server error",
                request_id,
                f"the function failed ({result.payload.get('errorType')}, "
                f"Lambda request id {result.request_id}); its log has the "
                "details",
                route,
            )
        try:
            status, out_headers, out_body = apigw.map_response(
                result.payload, api, apigw.header_value(headers, "Accept")
            )
        except apigw.MalformedResponse as exc:
            print(
                f"Malformed Lambda proxy response ({result.request_id}): {exc}",
                file=sys.stderr,
                flush=True,
            )
            return self.gateway(
                api,
                "INTEGRATION_FAILURE",
                "Internal server error",
                request_id,
                f"Malformed Lambda proxy response: {exc}",
                route,
            )
        response = Response(out_body, status_code=status)
        for name, value in out_headers:
            response.headers.append(name, value)
        return response


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
    sock.set_inheritable(False)
    return sock


def describe(
    function: LocalFunction,
    table: apigw.RouteTable,
    apis,
    base_url: str,
    api_key: str,
    ca: Path | None,
    log_name: str,
    environments: int,
) -> str:
    spec = function.spec
    stages = sorted({apis[r.api_id].stage_name for r in table.routes})
    lines = [
        f"Local API for {spec.logical_id} ({spec.handler}, {spec.runtime} on local Python "
        f"{sys.version.split()[0]}; stage {', '.join(stages)}) on {base_url}"
    ]
    width = max((len(r.path) for r in table.routes), default=0)
    for route in table.routes:
        access = [
            name
            for name, needed in (
                ("API key", route.api_key_required),
                (route.authorizer or "", bool(route.authorizer)),
                ("body validated", bool(route.request_model)),
            )
            if needed
        ]
        lines.append(f"  {route.method:<6} {route.path:<{width}}  {', '.join(access) or 'open'}")
    if ca:
        lines.append(f"CA certificate: {ca}")
        lines.append(f"  curl --cacert {ca} {base_url}/health")
    if any(r.api_key_required for r in table.routes):
        lines.append(f"API key (header {API_KEY_HEADER}): {api_key}")
    lines.append(f"Function log (its JSON logs, EMF metrics, START/END/REPORT): {log_name}")
    lines.append(f"Execution environments: up to {environments}, started on demand")
    shown = {k: function.environment[k] for k in spec.variables}
    lines.append("Function environment: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    return "\n".join(lines)


def _terminate(signum, frame):
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sock = bind(args.port)  # first: a busy port is the most likely problem
    pool = None
    log = None
    try:
        try:
            template, function = load_function(
                args.template,
                args.function,
                args.env_vars,
                tpl.parse_parameter_overrides(args.parameter_overrides),
                warn=lambda message: print(f"warning: {message}", file=sys.stderr),
            )
        except (tpl.TemplateError, FunctionError) as exc:
            print(f"local.api: {exc}", file=sys.stderr)
            return 2
        routes = [r for r in template.routes() if r.function_id == function.spec.logical_id]
        if not routes:
            print(
                f"local.api: {function.spec.logical_id} has no Api events in {args.template}",
                file=sys.stderr,
            )
            return 2
        table, apis = apigw.RouteTable(routes), template.apis()
        missing = [
            r for r in routes if r.request_model and r.request_model not in apis[r.api_id].models
        ]
        if missing:
            print(
                f"local.api: RequestModel {missing[0].request_model!r} of "
                f"{missing[0].method} {missing[0].path} is not in {missing[0].api_id}'s "
                "Models",
                file=sys.stderr,
            )
            return 2
        for route in routes:
            if route.authorizer == "AWS_IAM":
                print(
                    f"warning: {route.method} {route.path}: AWS_IAM is checked for a "
                    "signature's presence only",
                    file=sys.stderr,
                )
            elif route.authorizer:
                print(
                    f"warning: {route.method} {route.path}: authorizer {route.authorizer} "
                    "is not emulated: the route is open",
                    file=sys.stderr,
                )
        state = args.state_dir or STATE_ROOT / f"api-{args.port}"
        state.mkdir(parents=True, exist_ok=True)
        scheme = "http" if args.http else "https"
        certificates = None
        if not args.http:
            from local.tls import make_certificates

            certificates = make_certificates(state)
        if args.log_file == "-":
            log, log_name = sys.stderr.fileno(), "stderr"
        else:
            log_path = Path(args.log_file) if args.log_file else state / "function.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_bytes(b"")  # one run per log
            # append mode (O_APPEND): each line of each environment lands whole
            log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed in finally
            log_name = str(log_path.resolve())
        api_key = args.api_key or secrets.token_urlsafe(30)
        pool = EnvironmentPool(function, log, args.environments, owner=f"local-api:{args.port}")
        base_url = f"{scheme}://127.0.0.1:{args.port}"
        print(
            describe(
                function,
                table,
                apis,
                base_url,
                api_key,
                certificates.ca.resolve() if certificates else None,
                log_name,
                args.environments,
            ),
            flush=True,
        )

        import uvicorn

        config = uvicorn.Config(
            LocalApi(table, apis, pool, api_key, scheme, args.port, not args.quiet),
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=str(certificates.cert) if certificates else None,
            ssl_keyfile=str(certificates.key) if certificates else None,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        signal.signal(signal.SIGTERM, _terminate)  # uvicorn re-raises it after shutting down
        print("Ready. Ctrl-C stops.", flush=True)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    finally:
        if pool is not None:
            pool.close()
        if log is not None and not isinstance(log, int):
            log.close()
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
