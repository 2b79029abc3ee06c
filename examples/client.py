"""A tiny client of the deployed (or local) API: the standard library (and botocore's signer
for an API with IAM authorization).

    python examples/client.py URL examples/digit.png            # an image (PNG or JPEG)
    python examples/client.py URL examples/digit.json           # {"instances": [...]}
    python examples/client.py URL examples/digit.png --key KEY  # API_KEY mode (x-api-key)
    python examples/client.py URL examples/digit.png --sigv4    # IAM mode: signed with your
                                                                # AWS credentials (botocore)
    python examples/client.py URL --health                      # open: what is loaded now
    python examples/client.py URL --health deep --key KEY       # loads the model, waits

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


def region_of(url: str) -> str:
    """The AWS region of an API URL (https://ID.execute-api.REGION.amazonaws.com/...), else
    the standard configuration's (AWS_REGION, AWS_DEFAULT_REGION, the profile), else us-east-1."""
    parts = (urlsplit(url).hostname or "").split(".")
    if len(parts) > 3 and parts[1] == "execute-api":
        return parts[2]
    import botocore.session

    return botocore.session.get_session().get_config_variable("region") or "us-east-1"


def sigv4_headers(url: str, method: str, data: bytes | None, headers: dict) -> dict:
    """`headers` plus the AWS Signature Version 4 of this request for execute-api (IAM
    authorization), from the standard AWS credentials (environment, profile, SSO, role...)
    through botocore's own signer."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise OSError("no AWS credentials to sign with (aws configure, AWS_PROFILE, ...)")
    signed = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region_of(url)).add_auth(signed)
    return dict(signed.headers.items())


def request(
    url: str,
    method: str = "GET",
    body: object = None,
    key: str | None = None,
    ca: str | None = None,
    timeout: float = 30,
    sigv4: bool = False,
) -> tuple[int, object]:
    """(HTTP status, JSON answer or text) of one request; `sigv4`: signed with the standard
    AWS credentials (an API with IAM authorization)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if key:
        headers["x-api-key"] = key
    if sigv4:
        headers = sigv4_headers(url, method, data, headers)
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
    parser.add_argument(
        "--health",
        nargs="?",
        const="open",
        choices=("open", "deep"),
        help="GET /health instead (open: what is loaded now); deep: GET /health/deep (with the "
        "key or --sigv4: loads the model, waits for it)",
    )
    parser.add_argument(
        "--sigv4", action="store_true", help="sign with your AWS credentials (IAM mode)"
    )
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    if args.health == "deep":
        status, answer = request(f"{base}/health/deep", key=args.key, ca=args.ca, sigv4=args.sigv4)
    elif args.health or args.file is None:
        status, answer = request(f"{base}/health", ca=args.ca)
    else:
        body = predict_body(args.file)
        status, answer = request(
            f"{base}/predict", "POST", body, args.key, args.ca, sigv4=args.sigv4
        )
    print(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
