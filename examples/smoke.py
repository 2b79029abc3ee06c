"""`make smoke URL=... [API_KEY=... | SIGV4=1] [CA=...]`: a short suite against any deployed or
local API, REST or HTTP API.

Checks what a user of the API relies on: the open health (no key) and the deep one (it loads
the model), the TF Serving metadata, a prediction from instances and one from an image (both
made in the served model's input shape, read from its metadata), a bad request (400 with a
code), an unknown route (404 ROUTE_NOT_FOUND) and, with a key given, /predict and
/health/deep without it refused (403); with SIGV4 (an API with IAM authorization) every
request is signed with the standard AWS credentials and an unsigned one is refused (403).
Prints one line per check; exits 1 when any fails. For a local API on 127.0.0.1 it finds that
API's own certificate (examples/client.py).
"""

from __future__ import annotations

import argparse
import base64
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from examples.client import request


@dataclass
class Result:
    name: str
    ok: bool
    detail: str


def png(width: int, height: int, channels: int, pixel: Callable[[int, int], int]) -> bytes:
    """An 8-bit greyscale (1 channel) or RGB (3) PNG, standard library only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    colour = {1: 0, 3: 2}[channels]
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in [pixel(x, y)] * channels)
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def stroke(width: int, height: int) -> Callable[[int, int], int]:
    """A light vertical stroke on black (an MNIST-like "1"), in any size."""
    left, right = width * 2 // 5, max(width * 3 // 5, width * 2 // 5 + 1)
    top, bottom = height // 5, height * 4 // 5
    return lambda x, y: 255 if left <= x < right and top <= y < bottom else 0


def instance(shape: list[int], pixel: Callable[[int, int], int]) -> list:
    height, width, channels = shape
    return [[[pixel(x, y)] * channels for x in range(width)] for y in range(height)]


def input_shape(metadata: dict) -> list[int]:
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    (signature,) = signatures.values()
    (tensor,) = signature["inputs"].values()
    return [int(d["size"]) for d in tensor["tensor_shape"]["dim"]][1:]


def refused(status: int, answer: object, key: str | None) -> str:
    """A failed answer as a person reads it: status, code and message, and for a 403 what to
    do about the key."""
    if isinstance(answer, dict) and "error" in answer:
        text = f"{status} {answer.get('code', '')}: {answer['error']}"
    else:
        text = f"{status} {answer}"
    if status == 403:
        text += (
            "; the API refused the key: check API_KEY"
            if key
            else "; the API needs its key: make smoke URL=... API_KEY=..."
        )
    return text


def run(
    url: str, key: str | None = None, ca: str | None = None, sigv4: bool = False
) -> list[Result]:
    base = url.rstrip("/")
    results: list[Result] = []

    def check(name: str, ok: bool, detail: object) -> bool:
        results.append(Result(name, bool(ok), str(detail)[:300]))
        return bool(ok)

    def call(method: str, path: str, body: object = None, with_key: bool = True):
        credentials = key if with_key else None
        return request(f"{base}{path}", method, body, credentials, ca, sigv4=sigv4 and with_key)

    status, health = call("GET", "/health", with_key=False)  # open and shallow
    check(
        "GET /health answers 200 without a key (what this environment holds)",
        status == 200
        and isinstance(health, dict)
        and health.get("status") in ("ok", "degraded", "starting"),
        f"{status} {health}",
    )
    status, health = call("GET", "/health/deep")  # loads the model, waits for it
    model = health.get("model", {}) if isinstance(health, dict) else {}
    if not check(
        "GET /health/deep answers 200 with the served model",
        status == 200 and model,
        f"{status} {health}" if status == 200 else refused(status, health, key),
    ):
        return results
    name, version = model["name"], model["version"]
    status, metadata = call("GET", f"/v1/models/{name}/metadata")
    try:
        shape = input_shape(metadata)
    except (KeyError, TypeError, ValueError):
        shape = []
    if not check(
        f"GET /v1/models/{name}/metadata gives the input shape",
        status == 200 and len(shape) == 3,
        f"{status} shape={shape}" if status == 200 else refused(status, metadata, key),
    ):
        return results
    height, width, channels = shape
    draw = stroke(width, height)

    def prediction(answer: object) -> bool:
        return (
            isinstance(answer, dict)
            and len(answer.get("predictions") or []) == 1
            and "label" in answer["predictions"][0]
            and answer.get("model", {}).get("name") == name
        )

    status, answer = call("POST", "/predict", {"instances": [instance(shape, draw)]})
    check(
        "POST /predict with instances answers one prediction",
        status == 200 and prediction(answer),
        f"{status} {answer}",
    )
    image = base64.b64encode(png(width, height, channels, draw)).decode()
    status, answer = call("POST", "/predict", {"images": [image]})
    check(
        "POST /predict with a PNG answers one prediction",
        status == 200 and prediction(answer),
        f"{status} {answer}",
    )
    status, answer = call("POST", "/predict", {"instances": [[1, 2, 3]]})
    check(
        "a bad request answers 400 with a code",
        status == 400 and isinstance(answer, dict) and answer.get("code"),
        f"{status} {answer}",
    )
    status, answer = call("GET", "/no-such-route")
    check(
        "an unknown route answers 404 ROUTE_NOT_FOUND",
        status == 404 and isinstance(answer, dict) and answer.get("code") == "ROUTE_NOT_FOUND",
        f"{status} {answer}",
    )
    if key or sigv4:  # the protected routes refuse a caller without the key or signature
        unauthorized = "without the API key" if key else "unsigned"
        status, answer = call(
            "POST", "/predict", {"instances": [instance(shape, draw)]}, with_key=False
        )
        check(f"{unauthorized}, /predict is refused (403)", status == 403, f"{status} {answer}")
        status, answer = call("GET", "/health/deep", with_key=False)
        check(f"{unauthorized}, /health/deep is refused (403)", status == 403, f"{status} {answer}")
    results.append(Result(f"served: {name} version {version}", True, ""))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the API's base URL (ApiUrl output)")
    parser.add_argument("--api-key", help="the API key (API_KEY mode)")
    parser.add_argument("--ca", help="a CA certificate (default: the system's, or the local API's)")
    parser.add_argument(
        "--sigv4",
        action="store_true",
        help="sign every request with the standard AWS credentials (ApiAuthMode IAM)",
    )
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("URL is empty: make smoke URL=https://...")
    try:
        results = run(args.url, args.api_key, args.ca, args.sigv4)
    except OSError as exc:  # unreachable, TLS failure, timeout
        print(f"FAIL  {args.url} could not be reached: {exc}")
        return 1
    for result in results:
        print(
            f"{'ok  ' if result.ok else 'FAIL'}  {result.name}"
            + ("" if result.ok else f": {result.detail}")
        )
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
