"""A tiny client of the deployed (or local) API, standard library only.

    python examples/client.py URL examples/digit.png            # an image (PNG or JPEG)
    python examples/client.py URL examples/digit.json           # {"instances": [...]}
    python examples/client.py URL examples/digit.png --key KEY  # API_KEY mode (x-api-key)
    python examples/client.py URL --health

URL is the stack's ApiUrl output (https://ID.execute-api.REGION.amazonaws.com/prod) or the
local API's (https://127.0.0.1:3000, whose certificate is found by itself or given with --ca).
Prints the answer as JSON; exits 1 on an HTTP error (the API's {"error", "code"} printed).
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL_STATE = ROOT / ".local"  # where `make local-api` keeps its certificate (api-PORT/ca.pem)


def local_ca(url: str) -> str | None:
    """The local API's own CA certificate for a loopback URL, if that API made one."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    candidate = LOCAL_STATE / f"api-{parts.port or 443}" / "ca.pem"
    return str(candidate) if candidate.exists() else None


def context(url: str, ca: str | None = None) -> ssl.SSLContext | None:
    if not url.startswith("https:"):
        return None
    return ssl.create_default_context(cafile=ca or local_ca(url))


def request(
    url: str,
    method: str = "GET",
    body: object = None,
    key: str | None = None,
    ca: str | None = None,
    timeout: float = 30,
) -> tuple[int, object]:
    """(HTTP status, JSON answer or text) of one request."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if key:
        headers["x-api-key"] = key
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context(url, ca)) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def predict_body(path: Path) -> dict:
    """A request body from a file: JSON as it is, an image as base64 in "images"."""
    if path.suffix.lower() == ".json":
        return json.loads(path.read_text())
    return {"images": [base64.b64encode(path.read_bytes()).decode()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the API's base URL (the ApiUrl output)")
    parser.add_argument("file", nargs="?", type=Path, help="a .png/.jpg image or a .json body")
    parser.add_argument("--key", help="the API key (API_KEY mode)")
    parser.add_argument("--ca", help="a CA certificate to verify the server with")
    parser.add_argument("--health", action="store_true", help="GET /health instead")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    if args.health or args.file is None:
        status, answer = request(f"{base}/health", ca=args.ca)
    else:
        body = predict_body(args.file)
        status, answer = request(f"{base}/predict", "POST", body, args.key, args.ca)
    print(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
