"""The error of a request whose tensors do not fit the model, apart from mlcore.inference (which
raises it) so that what only catches it imports no numpy: the function's `errors` module is on
the model store's import path, which app starts before numpy is imported (model_store)."""

from __future__ import annotations


class TensorError(ValueError):
    """The request's tensors do not fit the model: `code` says how (a 4xx of the API)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
