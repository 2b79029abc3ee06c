"""Cross-origin requests (CORS): which web pages on other origins may call this API.

CORS_ALLOW_ORIGINS (template parameter CorsAllowOrigins): empty (the default) allows none, `*`
any origin, else a comma-separated list of exact origins (`https://app.example.com`). A
preflight (OPTIONS with Access-Control-Request-Method) reaches the function without an API key
or signature (browsers send neither with it) and is answered 204 with the allowed methods and
headers for an allowed origin, 403 CORS_NOT_ALLOWED for another. Every answer to an allowed
origin carries Access-Control-Allow-Origin (that origin, with `Vary: Origin`, or `*`). API
Gateway's own error answers carry the header from its gateway responses (template.yaml).

Written here rather than with SAM's Cors property: that one answers preflights with a mock
integration that can name a single origin only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ANY = "*"
ALLOW_METHODS = "GET, POST, OPTIONS"
# the API key, JSON bodies, and the SigV4 headers of IAM mode
ALLOW_HEADERS = (
    "Content-Type, X-Api-Key, Authorization, X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256"
)
MAX_AGE_SECONDS = "600"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


def parse_origins(value: str) -> tuple[str, ...]:
    """The allowed origins of CORS_ALLOW_ORIGINS; a ValueError says what an origin looks like."""
    origins = tuple(o.strip() for o in value.split(",") if o.strip())
    if ANY in origins and len(origins) > 1:
        raise ValueError("'*' allows every origin: give it alone")
    for origin in origins:
        if origin != ANY and not _ORIGIN.match(origin):
            raise ValueError(
                f"{origin[:80]!r} is not an origin: scheme://host[:port], e.g. "
                "https://app.example.com (no path, no trailing slash)"
            )
    return origins


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header, whatever its case."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def response_headers(allowed: tuple[str, ...], origin: str | None) -> dict[str, str]:
    """What an answer to a request from `origin` carries: nothing unless it is allowed."""
    if not allowed or origin is None:
        return {}
    if allowed == (ANY,):
        return {"Access-Control-Allow-Origin": ANY}
    if origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def preflight_headers(allowed: tuple[str, ...], origin: str | None) -> dict[str, str] | None:
    """A preflight's answer headers, or None when the origin is not allowed."""
    headers = response_headers(allowed, origin)
    if not headers:
        return None
    return {
        **headers,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": MAX_AGE_SECONDS,
    }
