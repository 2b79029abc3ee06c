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

from cors import parse_origins

from mlcore.registry import Registry
from mlcore.settings import LATEST, registry_location
from mlcore.settings import required as _required
from mlcore.signing import RsaPublicKey, load_public_key
from tracing import MODES as TRACING_MODES  # tracing.py says what each does


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str
    model_name: str
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
    # Signed versions (model_store): the public key every version's signature must verify
    # with (MANIFEST_PUBLIC_KEY); None serves unsigned versions.
    signature_key: RsaPublicKey | None = None
    # Cross-origin requests (cors.py): the origins allowed, () for none, ("*",) for any.
    cors_allow_origins: tuple[str, ...] = ()

    @property
    def follows_latest(self) -> bool:
        return self.model_version == LATEST

    @property
    def registry(self) -> Registry:
        return Registry(self.prefix, self.model_name)


def _positive_int(environ: Mapping[str, str], name: str) -> int:
    raw = _required(environ, name)
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{name}={raw!r}: must be a positive integer")
    return int(raw)


def _non_negative_int(environ: Mapping[str, str], name: str) -> int:
    raw = _required(environ, name)
    if not raw.isdigit():
        raise ValueError(f"{name}={raw!r}: must be an integer >= 0")
    return int(raw)


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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; a ValueError names the variable that is wrong."""
    environ = os.environ if environ is None else environ
    public_key = environ.get("MANIFEST_PUBLIC_KEY", "").strip()
    try:
        signature_key = load_public_key(public_key) if public_key else None
    except ValueError as exc:
        raise ValueError(f"MANIFEST_PUBLIC_KEY: {exc}") from None
    try:
        cors_allow_origins = parse_origins(environ.get("CORS_ALLOW_ORIGINS", ""))
    except ValueError as exc:
        raise ValueError(f"CORS_ALLOW_ORIGINS: {exc}") from None
    return Settings(
        **registry_location(environ),
        refresh_seconds=_seconds(environ, "MODEL_REFRESH_SECONDS"),
        max_instances=_positive_int(environ, "MAX_INSTANCES"),
        max_body_bytes=_positive_int(environ, "MAX_BODY_BYTES"),
        cache_dir=_required(environ, "MODEL_CACHE_DIR"),
        max_image_pixels=_positive_int(environ, "MAX_IMAGE_PIXELS"),
        max_batch_pixels=_positive_int(environ, "MAX_BATCH_PIXELS"),
        deadline_seconds=_seconds(environ, "DEADLINE_SECONDS", positive=True),
        deadline_margin_seconds=_seconds(environ, "DEADLINE_MARGIN_SECONDS"),
        memory_max_bytes=_non_negative_int(environ, "MODEL_MEMORY_MAX_BYTES"),
        capture_bucket=_required(environ, "CAPTURE_BUCKET"),
        capture_prefix=environ.get("CAPTURE_PREFIX", "").strip().strip("/"),
        capture_sample_rate=_share(environ, "CAPTURE_SAMPLE_RATE"),
        signature_key=signature_key,
        cors_allow_origins=cors_allow_origins,
    )
