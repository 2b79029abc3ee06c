"""The function's configuration, read once from the environment the template sets.

Configuration flows one way: template Parameters -> Globals.Function.Environment -> here. The
template is the only place with defaults: a variable missing here is an error naming it. The
metrics namespace and service name are read by Powertools itself
(POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME), never set in code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cors import parse_origins

from mlcore.registry import Registry
from mlcore.settings import LATEST, integer, registry_location
from mlcore.settings import required as _required
from tracing import LAMBDA, OFF
from tracing import MODES as TRACING_MODES  # tracing.py says what each does

if TYPE_CHECKING:  # mlcore.signing is imported only where MANIFEST_PUBLIC_KEY is set
    from mlcore.signing import PublicKeys


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str
    model_name: str  # the default model: /predict's without a "model" field, and the preload's
    # the models served: (model_name,) for one, several names, or ("*",) for every model under
    # the prefix (mlcore.settings.model_names); models.py serves them
    model_names: tuple[str, ...]
    model_version: str  # "latest" or a positive integer, as text
    refresh_seconds: float
    max_instances: int
    max_body_bytes: int
    cache_dir: str
    # Budgets of one request: decoded pixels per image and across a batch (checked from the
    # image headers before anything is decoded).
    max_image_pixels: int
    max_batch_pixels: int
    # One deadline per invocation: the time Lambda leaves it minus the margin, at most the cap
    # (the cap alone where there is no invocation: a preload during init). See mlcore.deadline.
    deadline_seconds: float
    deadline_margin_seconds: float
    # Models up to this size are verified and built in memory (no /tmp); larger ones are
    # streamed to cache_dir.
    memory_max_bytes: int
    # Opt-in capture for retraining (capture.py): the share of requests whose inputs and
    # answers are written to the capture bucket; 0 keeps nothing.
    capture_bucket: str
    capture_prefix: str
    capture_sample_rate: float
    # Signed versions (model_store): the public keys every version's signature must verify
    # with (MANIFEST_PUBLIC_KEY: P-256 for OpenSSF bundles, RSA for versions signed before
    # them); None serves unsigned versions.
    signature_key: PublicKeys | None = None
    # Cross-origin requests (cors.py): the origins allowed, () for none, ("*",) for any.
    cors_allow_origins: tuple[str, ...] = ()

    @property
    def follows_latest(self) -> bool:
        return self.model_version == LATEST

    @property
    def registry(self) -> Registry:
        return Registry(self.prefix, self.model_name)


def _seconds(environ: Mapping[str, str], name: str, positive: bool = False) -> float:
    raw = _required(environ, name)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 if positive else value >= 0) or value == float("inf"):
        raise ValueError(
            f"{name}={raw!r}: must be a number of seconds {'> 0' if positive else '>= 0'}"
        )
    return value


def _share(environ: Mapping[str, str], name: str) -> float:
    raw = _required(environ, name)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={raw!r}: must be a number from 0 to 1")
    return value


def load_tracing_mode(environ: Mapping[str, str] | None = None) -> str:
    """TRACING_MODE (template parameter TracingMode); a ValueError names the allowed modes."""
    environ = os.environ if environ is None else environ
    mode = _required(environ, "TRACING_MODE")
    if mode not in TRACING_MODES:
        raise ValueError(f"TRACING_MODE={mode!r}: must be one of {', '.join(TRACING_MODES)}")
    return mode


# What the Lambda runtime sets: the initialization type of this execution environment, and the
# handler it imports (the batch function's handler imports app too).
API_HANDLER = "app.lambda_handler"
ON_DEMAND = "on-demand"


def loads_model_at_import(environ: Mapping[str, str] | None = None) -> bool:
    """Whether app.py starts loading the default model while it imports (an on-demand cold
    start of the API function, whose first request waits for that load anyway): the registry
    reads and the download then run while the rest of the function imports. Not for the batch
    function (it names its own versions), not where init runs ahead of requests (provisioned
    concurrency and SnapStart preload and wait: app.preload_model), and not with a tracing SDK
    (xray-sdk, otel): there the first request starts the load so that its spans are children of
    that request's."""
    environ = os.environ if environ is None else environ
    return (
        environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == ON_DEMAND
        and environ.get("_HANDLER") == API_HANDLER
        and environ.get("TRACING_MODE") in (LAMBDA, OFF)
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; a ValueError names the variable that is wrong."""
    environ = os.environ if environ is None else environ
    public_key = environ.get("MANIFEST_PUBLIC_KEY", "").strip()
    signature_key = None
    try:
        if public_key:
            from mlcore.signing import load_public_keys

            signature_key = load_public_keys(public_key)
    except ValueError as exc:
        raise ValueError(f"MANIFEST_PUBLIC_KEY: {exc}") from None
    try:
        cors_allow_origins = parse_origins(environ.get("CORS_ALLOW_ORIGINS", ""))
    except ValueError as exc:
        raise ValueError(f"CORS_ALLOW_ORIGINS: {exc}") from None
    return Settings(
        **registry_location(environ),
        refresh_seconds=_seconds(environ, "MODEL_REFRESH_SECONDS"),
        max_instances=integer(environ, "MAX_INSTANCES", 1),
        max_body_bytes=integer(environ, "MAX_BODY_BYTES", 1),
        cache_dir=_required(environ, "MODEL_CACHE_DIR"),
        max_image_pixels=integer(environ, "MAX_IMAGE_PIXELS", 1),
        max_batch_pixels=integer(environ, "MAX_BATCH_PIXELS", 1),
        deadline_seconds=_seconds(environ, "DEADLINE_SECONDS", positive=True),
        deadline_margin_seconds=_seconds(environ, "DEADLINE_MARGIN_SECONDS"),
        memory_max_bytes=integer(environ, "MODEL_MEMORY_MAX_BYTES", 0),
        capture_bucket=_required(environ, "CAPTURE_BUCKET"),
        capture_prefix=environ.get("CAPTURE_PREFIX", "").strip().strip("/"),
        capture_sample_rate=_share(environ, "CAPTURE_SAMPLE_RATE"),
        signature_key=signature_key,
        cors_allow_origins=cors_allow_origins,
    )


@dataclass(frozen=True)
class BatchSettings:
    """Where the batch function (batch.py) reads and writes: buckets fixed at deploy time
    (template: BatchInputBucketName, BatchOutputBucketName, or the bucket the stack creates),
    each job's prefixes within these (BatchInputPrefix, BatchOutputPrefix: "" or "a/b/"), and
    the largest object it reads (BatchMaxObjectBytes)."""

    input_bucket: str
    input_prefix: str
    output_bucket: str
    output_prefix: str
    max_object_bytes: int


def _folder(environ: Mapping[str, str], name: str) -> str:
    """A key prefix as a folder: "" (the whole bucket) or "a/b/"."""
    raw = environ.get(name, "").strip().strip("/")
    return f"{raw}/" if raw else ""


def load_batch_settings(environ: Mapping[str, str] | None = None) -> BatchSettings:
    """The batch settings from the environment; a ValueError names the variable that is wrong.
    Results never go to the model registry's bucket (the template's Rule says so too)."""
    environ = os.environ if environ is None else environ
    settings = BatchSettings(
        input_bucket=_required(environ, "BATCH_INPUT_BUCKET"),
        input_prefix=_folder(environ, "BATCH_INPUT_PREFIX"),
        output_bucket=_required(environ, "BATCH_OUTPUT_BUCKET"),
        output_prefix=_folder(environ, "BATCH_OUTPUT_PREFIX"),
        max_object_bytes=integer(environ, "BATCH_MAX_OBJECT_BYTES", 1),
    )
    if settings.output_bucket == _required(environ, "MODEL_BUCKET"):
        raise ValueError(
            f"BATCH_OUTPUT_BUCKET={settings.output_bucket!r} is the model registry's bucket; "
            "batch results go to a bucket of their own (BatchOutputBucketName)"
        )
    return settings
