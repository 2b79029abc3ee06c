"""An S3 endpoint that misbehaves on demand, on a real loopback socket, for fault injection.

``FaultyS3(upstream)`` is an HTTP proxy in front of a real S3 server (moto_server); clients
reach it through the standard ``AWS_ENDPOINT_URL_S3`` setting, as they would reach S3. Its
``mode`` can change at any time:

- ``pass``: every request is forwarded and answered as the upstream answers it;
- ``silent``: connections are accepted and requests read, never answered (a black hole);
- ``reset``: connections are accepted, then dropped (TCP reset) without an answer;
- ``stall``: the upstream's status, headers and first ``stall_after`` bytes of the body are
  sent, then nothing more (a transfer stalled mid-body);
- ``refuse``: the listening socket is closed, so connections are refused, as when nothing
  listens on the port; any other mode listens again on the same port;
- ``error``: every ``error_every``-th request (counted per proxy) is answered by S3's own
  throttling or server error (``503 SlowDown``, ``500 InternalError``, alternately, with S3's
  XML error document), the others pass: intermittent 5xx;
- ``truncate``: the body cut to its first ``stall_after`` bytes, with a Content-Length that
  says so (a truncated object the client cannot tell from a whole one: only a checksum can);
- ``change``: every other GET of an object has one byte of its body flipped (a body that
  changes between reads, as an object replaced while it is read);
- ``drip``: the body is sent ``drip_bytes`` at a time, ``drip_seconds`` apart (a slow drip).

Changing the mode closes the connections that hang (silent, stalled), as an endpoint that
comes back (or goes down for good) does.

``only`` (a substring of the request path) limits the fault to matching requests; others
pass. ``on_request(method, path)`` is called for each request before it is handled (a test
can record, delay or kill there). Stalled and silent connections are released when the
proxy stops, so ``with FaultyS3(...)`` leaves no thread behind.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("pass", "silent", "reset", "stall", "refuse", "error", "truncate", "change", "drip")
S3_ERRORS = (
    (503, "SlowDown", "Please reduce your request rate."),
    (500, "InternalError", "We encountered an internal error. Please try again."),
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultyS3:
    def __init__(self, upstream: str, mode: str = "pass", stall_after: int = 1024):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.stall_after = stall_after
        self.error_every = 2
        self.drip_bytes, self.drip_seconds = 1024, 0.05
        self._count = 0  # requests seen, for error and change
        self.only: str | None = None
        self.on_request = None
        self.requests: list[tuple[str, str, str]] = []  # (mode applied, method, path)
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._mode = "pass"
        self._listen()
        self.mode = mode

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {MODES}")
        with self._lock:
            if mode == "refuse" and self._server is not None:
                self._stop_server()
            elif mode != "refuse" and self._server is None:
                self._listen(self.port)
            if mode != self._mode:  # what hangs now ends: its connections are closed
                self._release.set()
                self._release = threading.Event()
            self._mode = mode

    def mode_for(self, path: str) -> str:
        if self.only is not None and self.only not in path:
            return "pass"
        return self._mode

    def _listen(self, port: int = 0) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.on_request is not None:  # first: it may change the mode
                    proxy.on_request(self.command, self.path)
                release = proxy._release  # set when the mode changes
                mode = proxy.mode_for(self.path)
                proxy.requests.append((mode, self.command, self.path))
                if mode == "silent":
                    release.wait()  # until the mode changes or the proxy closes
                    self.close_connection = True
                    return
                if mode in ("reset", "refuse"):  # refuse: a connection made before it
                    # SO_LINGER 0: close() sends RST, the client sees "connection reset"
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                with proxy._lock:
                    proxy._count += 1
                    count = proxy._count
                if mode == "error" and count % proxy.error_every == 0:
                    self._s3_error(*S3_ERRORS[(count // proxy.error_every) % 2])
                    return
                self._forward(body, mode, release, count)

            def _s3_error(self, status: int, code: str, message: str) -> None:
                document = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def _forward(self, body: bytes, mode: str, release: threading.Event, count: int):
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    headers["Host"] = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                if mode == "truncate" and self.command == "GET" and answer.status < 300:
                    data = data[: proxy.stall_after]
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD" or answer.status >= 300:
                    self.wfile.write(data)
                    return
                if mode == "change" and self.command == "GET" and count % 2 and data:
                    middle = len(data) // 2
                    data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
                if mode == "drip":
                    for start in range(0, len(data), proxy.drip_bytes):
                        if release.wait(proxy.drip_seconds):
                            self.close_connection = True
                            return
                        self.wfile.write(data[start : start + proxy.drip_bytes])
                        self.wfile.flush()
                    return
                if mode == "stall":
                    self.wfile.write(data[: proxy.stall_after])
                    self.wfile.flush()
                    release.wait()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        self._thread.join(5)

    def close(self) -> None:
        with self._lock:
            self._release.set()  # silent and stalled handlers return
            if self._server is not None:
                self._stop_server()

    def __enter__(self) -> FaultyS3:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
