"""Errors a client can see: an HTTP status, a stable code and a message.

Every route answers errors as {"error": "<message>", "code": "<CODE>"}. TF Serving clients
read "error" as a string; ours read "code". The message says what was wrong and what is
allowed; nothing of the request is logged.
"""

from __future__ import annotations

import contextlib

from mlcore.tensor_errors import TensorError

# code -> HTTP status; the list the docs' error table (docs/api.md) and the local API rely on.
STATUS_BY_CODE: dict[str, int] = {
    "INVALID_JSON": 400,
    "MISSING_FIELD": 400,
    "AMBIGUOUS_INPUT": 400,
    "INVALID_SHAPE": 400,
    "INVALID_TYPE": 400,
    "NON_FINITE_VALUE": 400,
    "VALUE_OUT_OF_RANGE": 400,
    "WRONG_VALUE_RANGE": 400,
    "INVALID_IMAGE": 400,
    "EMPTY_BATCH": 400,
    "UNKNOWN_SIGNATURE": 400,
    "UNKNOWN_INPUT": 400,
    "MISSING_INPUT": 400,
    "UNKNOWN_OUTPUT": 400,
    "UNSUPPORTED_EXTENSION": 400,
    "UNSUPPORTED_EVENT": 400,
    "CORS_NOT_ALLOWED": 403,
    "MODEL_NOT_FOUND": 404,
    "VERSION_NOT_FOUND": 404,
    "ROUTE_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "TOO_MANY_INSTANCES": 413,
    "PAYLOAD_TOO_LARGE": 413,
    "RESPONSE_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "INTERNAL_ERROR": 500,
    "MODEL_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """A failure with a stable code; its status comes from STATUS_BY_CODE."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE[code]
        self.headers = headers or {}

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status < 500

    def body(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}


class ModelUnavailable(ApiError):
    """No verified model can be served (none published, S3 unreachable, every version refused)."""

    def __init__(self, message: str):
        super().__init__("MODEL_UNAVAILABLE", message)


@contextlib.contextmanager
def as_api_error():
    """A TensorError (the request's tensors do not fit the model) raised inside becomes the
    ApiError of its code."""
    try:
        yield
    except TensorError as exc:
        raise ApiError(exc.code, exc.message) from None
