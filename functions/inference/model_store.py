"""The model registry on S3 -> one verified, loaded model per execution environment.

The registry's layout is mlcore.registry's. The first request loads the model (pointer ->
manifest -> model streamed to MODEL_CACHE_DIR and hashed in the same pass -> size and sha256
checked -> interpreter built). Following `latest`,
the pointer is re-read at most every MODEL_REFRESH_SECONDS; a new version replaces the served
one only once it has verified and loaded. A version that fails verification is remembered and
never downloaded again by this process; the previous good version keeps serving.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config import Settings, load_settings
from errors import ModelUnavailable
from mlcore.images import InputSpec
from mlcore.predictor import ModelMismatch, Predictor
from mlcore.registry import MODEL_FILE, READABLE_SCHEMAS, Pointer

CHUNK_BYTES = 1 << 20


class ModelRefused(Exception):
    """This version's files do not match its manifest or do not load: never serve it."""


@dataclass
class LoadedModel:
    name: str
    version: int
    manifest: dict[str, Any]
    predictor: Predictor
    spec: InputSpec
    labels: list[str]
    path: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.predictor.predict(batch)


def _no_span(name: str):
    return contextlib.nullcontext()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class ModelStore:
    """Holds the served model; `get()` loads or refreshes it when due, else raises ModelUnavailable.

    s3: a boto3 S3 client (or anything with get_object(Bucket=, Key=) returning {"Body": stream}).
    clock: seconds, monotonic. span(name): a context manager around each load step (X-Ray).
    on_loaded(model) / on_failure(version, reason): hooks for metrics and logs.
    """

    def __init__(
        self,
        settings: Settings,
        s3: Any,
        clock: Callable[[], float] = time.monotonic,
        span: Callable[[str], Any] = _no_span,
        on_loaded: Callable[[LoadedModel], None] = _ignore,
        on_failure: Callable[[int | None, str], None] = _ignore,
        build_predictor: Callable[[str, dict[str, Any]], Predictor] = Predictor.from_file,
    ):
        self.settings = settings
        self._s3 = s3
        self._clock = clock
        self._span = span
        self._on_loaded = on_loaded
        self._on_failure = on_failure
        self._build_predictor = build_predictor
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._checked_at: float | None = None
        self.refused: dict[int, str] = {}  # version -> why it was refused

    @property
    def current(self) -> LoadedModel | None:
        """The model being served, without any I/O."""
        return self._model

    def get(self) -> LoadedModel:
        model = self._model
        if model is not None and not self._refresh_due():
            return model
        with self._lock:
            if self._model is None:
                self._load_first()
            elif self._refresh_due():
                self._refresh()
            assert self._model is not None
            return self._model

    def _refresh_due(self) -> bool:
        if not self.settings.follows_latest or self._checked_at is None:
            return False
        return self._clock() - self._checked_at >= self.settings.refresh_seconds

    # -- registry reads --------------------------------------------------------------------

    def _read_json(self, key: str) -> Any:
        body = self._s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"]
        try:
            return json.loads(body.read())
        finally:
            body.close()

    def _pointed_version(self) -> int:
        """The version latest.json names."""
        return Pointer.parse(self._read_json(self.settings.registry.pointer_key)).version

    def _target(self) -> int:
        if self.settings.follows_latest:
            return self._pointed_version()
        return int(self.settings.model_version)

    # -- loading ---------------------------------------------------------------------------

    def _load_first(self) -> None:
        version = None
        try:
            version = self._target()
            self._checked_at = self._clock()
            if version in self.refused:
                raise ModelRefused(self.refused[version])
            self._install(self._load(version))
        except ModelRefused as exc:
            raise ModelUnavailable(
                f"model '{self.settings.model_name}' version {version} was refused ({exc}); "
                "publish a good version, the next request tries again"
            ) from None
        except Exception as exc:
            # S3 unreachable, an object missing, a bad pointer: the next request tries again
            self._on_failure(version, f"{type(exc).__name__}: {exc}")
            raise ModelUnavailable(
                f"model '{self.settings.model_name}' could not be loaded from the registry; "
                "the next request tries again"
            ) from None

    def _refresh(self) -> None:
        """Re-read latest.json; swap only to a new version that verifies. Never raises."""
        self._checked_at = self._clock()
        version = None
        try:
            version = self._pointed_version()
            if version == self._model.version or version in self.refused:
                return
            self._install(self._load(version))
        except ModelRefused:
            pass  # already reported; the current model keeps serving
        except Exception as exc:
            self._on_failure(version, f"{type(exc).__name__}: {exc}")

    def _install(self, model: LoadedModel) -> None:
        previous, self._model = self._model, model
        if previous is not None and previous.path != model.path:
            with contextlib.suppress(OSError):
                os.remove(previous.path)  # the old interpreter keeps its mapping on Linux
        self._on_loaded(model)

    def _refuse(self, version: int, reason: str) -> ModelRefused:
        self.refused[version] = reason
        self._on_failure(version, reason)
        return ModelRefused(reason)

    def _load(self, version: int) -> LoadedModel:
        started = time.perf_counter()
        registry = self.settings.registry
        manifest = self._read_json(registry.manifest_key(version))
        expected = self._check_manifest(manifest, version)
        model_key = registry.model_key(version)
        path = os.path.join(
            self.settings.cache_dir, self.settings.model_name, str(version), MODEL_FILE
        )

        t0 = time.perf_counter()
        with self._span("download"):
            size, sha256 = self._download(model_key, path, expected["size"])
        t1 = time.perf_counter()
        with self._span("verify"):
            if size != expected["size"] or sha256 != expected["sha256"]:
                _remove(path)
                raise self._refuse(
                    version,
                    f"{MODEL_FILE} is {size} bytes with sha256 {sha256[:12]}..., manifest says "
                    f"{expected['size']} bytes with sha256 {expected['sha256'][:12]}...",
                )
        t2 = time.perf_counter()
        with self._span("load"):
            try:
                predictor = self._build_predictor(path, manifest)
                predictor.predict(np.zeros((1, *predictor.instance_shape), np.float32))  # warm up
            except ModelMismatch as exc:
                raise self._refuse(version, f"model does not match its manifest: {exc}") from None
            except Exception as exc:  # the runtime rejects the file
                raise self._refuse(
                    version, f"model does not load: {type(exc).__name__}: {exc}"
                ) from None
        t3 = time.perf_counter()
        return LoadedModel(
            name=self.settings.model_name,
            version=version,
            manifest=manifest,
            predictor=predictor,
            spec=InputSpec.from_manifest(manifest),
            labels=[str(label) for label in manifest["labels"]],
            path=path,
            timings_ms={
                "download": (t1 - t0) * 1000,
                "verify": (t2 - t1) * 1000,
                "build": (t3 - t2) * 1000,
                "total": (t3 - started) * 1000,
            },
        )

    def _check_manifest(self, manifest: Any, version: int) -> dict[str, Any]:
        """Check the fields serving relies on; returns the model file's size and sha256."""
        try:
            if manifest.get("schema_version") not in READABLE_SCHEMAS:
                raise ValueError(
                    f"schema_version {manifest.get('schema_version')!r} is not one of "
                    f"{READABLE_SCHEMAS}"
                )
            if manifest["name"] != self.settings.model_name or int(manifest["version"]) != version:
                raise ValueError(f"it describes {manifest['name']} version {manifest['version']}")
            expected = manifest["files"][MODEL_FILE]
            size, sha256 = int(expected["size"]), str(expected["sha256"]).lower()
            InputSpec.from_manifest(manifest)
            if not manifest["labels"]:
                raise ValueError("it lists no labels")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._refuse(
                version, f"manifest is not usable: {type(exc).__name__}: {exc}"
            ) from None
        return {"size": size, "sha256": sha256}

    def _download(self, key: str, path: str, expected_size: int) -> tuple[int, str]:
        """Stream the object to `path`, hashing as it arrives (the file is never read back)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
        digest = hashlib.sha256()
        size = 0
        body = self._s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"]
        try:
            with open(partial, "wb") as out:
                while chunk := body.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > expected_size:  # never store more than the manifest promises
                        break
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(partial, path)
        finally:
            body.close()
            _remove(partial)
        return size, digest.hexdigest()


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def create_s3_client() -> Any:
    """Plain boto3 S3 client; the endpoint comes from standard AWS config (AWS_ENDPOINT_URL_S3)."""
    import boto3  # ~130 ms: only when the first model is loaded
    from botocore.config import Config

    # We verify sha256 against the manifest ourselves; don't let botocore hash the body again.
    config = Config(
        response_checksum_validation="when_required",
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.client("s3", config=config)


def create_store(clock: Callable[[], float] = time.monotonic, **hooks: Any) -> ModelStore:
    """A store configured from the environment (hooks: span, on_loaded, on_failure)."""
    return ModelStore(load_settings(), s3=create_s3_client(), clock=clock, **hooks)
