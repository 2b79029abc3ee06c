"""The model registry on S3 -> one verified, loaded model per execution environment.

The registry's layout is mlcore.registry's. Loading a version: pointer -> manifest -> the model
streamed and hashed in the same pass -> size and sha256 checked -> interpreter built. A model up
to MODEL_MEMORY_MAX_BYTES is built from memory and never touches /tmp; a larger one is streamed
to MODEL_CACHE_DIR.

Requests are never held up by the registry beyond their deadline (mlcore.deadline):

- Loads and refreshes run in one background thread at a time. A request without a model starts
  (or joins) the load and waits for it at most until its deadline, then answers 503
  MODEL_UNAVAILABLE; the load goes on, and a later request finds its result. A request with a
  model never waits: when a refresh is due it starts one and answers with the current model.
- Following `latest`, the pointer is re-read every MODEL_REFRESH_SECONDS. A failed load or
  refresh is retried after a backoff (1 s, doubling, at most RETRY_MAX_SECONDS and the refresh
  interval), not on every request, and is reported (ModelLoadFailures).
- The S3 client's own connect and read timeouts and retries are bounded (create_s3_client:
  s3_reader), so the thread never hangs either. The store takes a client factory: any client
  with boto3's `get_object(Bucket=, Key=) -> {"Body": stream}` can sit behind it (the
  function's own is obstore's, s3_reader; tests use boto3 and in-memory fakes).

With MANIFEST_PUBLIC_KEY set, a version is trusted only if its SIGNATURE_FILE holds a valid
signature (mlcore.signing, offline: no KMS call) of its name, version and the sha256 of the
manifest's exact bytes; otherwise it is refused like a checksum mismatch, before its manifest is
used or its model downloaded. A version replaced together with its manifest by someone without
the signing key is therefore never served.

A version that fails verification (checksum or signature), does not load, or cannot fit in
/tmp even alone is refused: remembered and never downloaded again by this process; the previous
good version keeps serving.
An upgrade needs room for the new model only: when both do not fit in /tmp, the new version is
first verified in a pass that stores nothing, then the old file is freed and the new one
downloaded (requests in that window wait for it, within their deadline).

Reports (model loaded, load failed) are delivered through the hooks in the thread of the
request that calls get() next, so that metrics and logs belong to an invocation.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config import Settings, load_settings
from errors import ModelUnavailable
from mlcore import documents
from mlcore.deadline import Deadline
from mlcore.registry import (
    MANIFEST_FILE,
    MODEL_FILE,
    READABLE_SCHEMAS,
    SIGNATURE_FILE,
    Pointer,
    read_signature,
    signed_statement,
)
from mlcore.settings import LATEST

# What needs numpy (about 100 ms of imports: the model's spec, signatures and predictor) and the
# signature checks are imported where a load first uses them, not with this module: app.py starts
# the first load right after importing this module, so that the pointer and manifest GETs run
# while app imports numpy and the rest.
if TYPE_CHECKING:
    import numpy as np

    from mlcore.generic import GenericManifest
    from mlcore.images import InputSpec
    from mlcore.predictor import Predictor
    from mlcore.signatures import Signature

CHUNK_BYTES = 1 << 20
SMALL_MODEL_BYTES = 1 << 18  # hashed without OpenSSL up to this size (_sha256)
RETRY_FIRST_SECONDS = 1.0  # the first retry after a failed load or refresh
RETRY_MAX_SECONDS = 60.0  # backoff doubles up to this (and up to the refresh interval)
DISK_SLACK_BYTES = 1 << 16  # file system blocks beyond the model's size
VERIFY_ATTEMPTS = 5  # a version whose model does not verify is tried this often, then refused


class ModelRefused(Exception):
    """This version's manifest or signature is not valid, its model does not load or cannot
    fit: never serve it (until the pointer changes)."""


class NotVerified(ModelRefused):
    """This version's model did not match its manifest's size or sha256 this time: possibly
    transient (an object read while it was replaced, a truncated body), so it is tried again
    with backoff, at most VERIFY_ATTEMPTS times, then refused until the pointer changes."""


class ObjectMissing(FileNotFoundError):
    """The registry has no object under this key (whichever client said so, in its own way)."""

    def __init__(self, bucket: str, key: str):
        super().__init__(f"s3://{bucket}/{key} does not exist")
        self.key = key


@dataclass
class LoadedModel:
    """A verified model. An image classifier (kind image_classifier) has its image input's
    spec and its labels; a generic model (mlcore.generic) has its parsed manifest (`generic`),
    and labels only if its manifest names some. Both answer by signature (`signatures`)."""

    name: str
    version: int
    manifest: dict[str, Any]
    predictor: Predictor
    spec: InputSpec | None  # an image classifier's input; None for a generic model
    labels: list[str]
    path: str | None  # None: built from memory
    size: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    generic: GenericManifest | None = None

    @property
    def kind(self) -> str:
        from mlcore.generic import IMAGE_CLASSIFIER, KIND

        return IMAGE_CLASSIFIER if self.generic is None else KIND

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.predictor.predict(batch)

    @functools.cached_property
    def signatures(self) -> dict[str, Signature]:
        """The signatures clients call by name: a generic model's from its manifest (with the
        value ranges it states); an image classifier's from the model (read when first asked,
        not at load: /predict does not need them), its image input taking spec's range."""
        if self.generic is not None:
            return self.generic.signatures
        signatures = self.predictor.signatures()
        pixels = (self.spec.low, self.spec.high)
        return {
            key: dataclasses.replace(
                signature,
                inputs=tuple(dataclasses.replace(t, value_range=pixels) for t in signature.inputs),
            )
            for key, signature in signatures.items()
        }

    @functools.cached_property
    def default_signature(self) -> str:
        if self.generic is not None:
            return self.generic.default_signature
        from mlcore.signatures import default_signature

        return default_signature(self.signatures)

    @property
    def label_output(self) -> str | None:
        """The output the labels name (an image classifier's one output)."""
        if self.generic is not None:
            return self.generic.label_output
        return self.signatures[self.default_signature].output_names[0]

    def expected_inputs(self) -> dict[str, dict[str, Any]]:
        """Per signature and input: the value range it takes (None: any finite value) and,
        for an image classifier, how an image becomes that input (TF Serving's metadata
        extension)."""
        preprocessing = None
        if self.spec is not None:
            preprocessing = {
                "color": self.spec.color,
                "policy": self.spec.policy,
                "size": [self.spec.height, self.spec.width],
                "images": 'base64 PNG or JPEG, as {"b64": "..."} (or /predict\'s "images")',
            }
        return {
            key: {
                t.key: {
                    "value_range": list(t.value_range) if t.value_range else None,
                    "preprocessing": preprocessing,
                }
                for t in signature.inputs
            }
            for key, signature in self.signatures.items()
        }


@dataclass
class _Job:
    kind: str  # "load" (no model yet) or "refresh"
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None  # why it failed, for the 503's message


def _no_span(name: str):
    return contextlib.nullcontext()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def _build(source: str | bytes, manifest: dict[str, Any]) -> Predictor:
    from mlcore.predictor import Predictor

    if isinstance(source, bytes):
        return Predictor.from_bytes(source, manifest)
    return Predictor.from_file(source, manifest)


def disk_free(path: str) -> int:
    """Bytes free on path's file system."""
    import shutil  # with bz2 and lzma, which nothing on the cold path needs

    return shutil.disk_usage(path).free


class ModelStore:
    """Holds the served model; `get(deadline)` returns it, starting a load or refresh when one
    is due, else raises ModelUnavailable.

    client_factory: makes the S3 client, once, in the loading thread (see the module docstring).
    clock: seconds, monotonic; schedules refreshes and retries. span(name): a context manager
    around each load step (X-Ray). on_loaded(model) / on_failure(version, reason): hooks for
    metrics and logs. build_predictor(path or bytes, manifest). disk_free(path): bytes free.
    """

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
        span: Callable[[str], Any] = _no_span,
        on_loaded: Callable[[LoadedModel], None] = _ignore,
        on_failure: Callable[[int | None, str], None] = _ignore,
        build_predictor: Callable[[str | bytes, dict[str, Any]], Predictor] = _build,
        disk_free: Callable[[str], int] = disk_free,
    ):
        self.settings = settings
        self._client_factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._span = span
        self._on_loaded = on_loaded
        self._on_failure = on_failure
        self._build_predictor = build_predictor
        self._disk_free = disk_free
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._job: _Job | None = None
        self._checked_at: float | None = None  # when the pointer was last read
        self._failures = 0  # consecutive failed loads or refreshes
        self._retry_at = float("-inf")
        self._last_error: str | None = None
        self._reports: list[tuple] = []
        self.refused: dict[
            int, str
        ] = {}  # version -> why it was refused (until the pointer changes)
        self._unverified: dict[int, int] = {}  # version -> failed verifications (NotVerified)
        self.pointer_refused: str | None = None  # why the last pointer read was refused
        # a pinned store's object version ids (from the pointer that named its version)
        self.object_versions: dict[str, str] | None = None
        self.pointer: Pointer | None = None  # the pointer as last read (following `latest`)
        # size -> why this store must not load a model of that size (None: it may); a canary
        # store refuses what does not fit beside the stable model (canary.py)
        self.admit: Callable[[int], str | None] | None = None

    def pinned(
        self,
        version: int,
        on_failure: Callable[[int | None, str], None] | None = None,
        admit: Callable[[int], str | None] | None = None,
    ) -> ModelStore:
        """A store of the same registry, client seam and hooks that serves only `version` (a
        model canary's, canary.py); its own failure hook and admission check when given."""
        store = self._sibling(model_version=str(version))
        store._on_failure = on_failure or self._on_failure
        store.admit = admit
        if self.pointer is not None:
            store.object_versions = self.pointer.object_versions(version)
        return store

    def named(self, name: str) -> ModelStore:
        """A store of another model of the same registry (models.py: one per served name), with
        the same client seam, hooks and settings but the name, following its own `latest`
        (MODEL_VERSION pins the default model only: a version number is one model's)."""
        return self._sibling(model_name=name, model_version=LATEST)

    def _sibling(self, **settings: Any) -> ModelStore:
        """A store with these settings changed and the same client seam and hooks."""
        return ModelStore(
            dataclasses.replace(self.settings, **settings),
            self._client_factory,
            clock=self._clock,
            span=self._span,
            on_loaded=self._on_loaded,
            on_failure=self._on_failure,
            build_predictor=self._build_predictor,
            disk_free=self._disk_free,
        )

    def release(self) -> LoadedModel | None:
        """Stop holding the model (models.py evicts the least recently used): its file in
        cache_dir is removed, and the next get() reads the pointer, downloads and verifies
        again. Nothing is released while a load or refresh runs (None)."""
        with self._lock:
            if self._job is not None:
                return None
            model, self._model, self._checked_at = self._model, None, None
        if model is not None and model.path:
            _remove(model.path)
        return model

    def list_names(self) -> list[str]:
        """The model names under the registry's prefix (models.py, ModelNames "*"): its
        "folders", in S3's order, whether or not a pointer is published in them yet."""
        prefix = f"{self.settings.prefix}/" if self.settings.prefix else ""
        listed = self._s3().list_objects_v2(
            Bucket=self.settings.bucket, Prefix=prefix, Delimiter="/"
        )
        return [
            entry["Prefix"][len(prefix) :].rstrip("/") for entry in listed.get("CommonPrefixes", [])
        ]

    @property
    def current(self) -> LoadedModel | None:
        """The model being served, without any I/O."""
        return self._model

    def get(self, deadline: Deadline | None = None) -> LoadedModel:
        """The served model. Without a deadline (no invocation: a preload) the cap applies."""
        if deadline is None:
            deadline = Deadline(self.settings.deadline_seconds)
        self._deliver_reports()
        with self._lock:
            model = self._model
            if model is not None:
                if self._job is None and self._refresh_due():
                    self._start("refresh")
                return model
            job = self._job
            if job is None:
                if self._clock() < self._retry_at:
                    raise self._unavailable(None)
                job = self._start("load")
        job.done.wait(deadline.remaining())
        self._deliver_reports()
        model = self._model
        if model is None:
            raise self._unavailable(job)
        return model

    def start_loading(self) -> None:
        """Start the first load in its thread and return at once (app.py, during import on an
        on-demand cold start); the first get() joins it. Nothing if a model or a job is there."""
        with self._lock:
            if self._model is None and self._job is None:
                self._start("load")

    def stable_version(self) -> int:
        """The version this store serves as stable now: MODEL_VERSION where it is pinned, else
        the pointer read afresh, in the caller's thread (one GET, bounded by the client's own
        timeouts), whatever the refresh interval: what a batch job that names no version uses
        (batch.py). ModelUnavailable says why there is none."""
        if not self.settings.follows_latest:
            return int(self.settings.model_version)
        key = self.settings.registry.pointer_key
        try:
            return Pointer.parse(self._read_bytes(key)).version
        except ValueError as exc:  # a pointer that is not one (hostile until checked)
            reason = f"{key} is not usable: {exc}"
        except Exception as exc:
            reason = self._read_failure(exc)
        raise ModelUnavailable(
            f"model '{self.settings.model_name}' has no stable version: {reason}"
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Until the running load or refresh (if any) has ended; False if it is still running."""
        job = self._job
        return job is None or job.done.wait(timeout)

    def restored(self) -> None:
        """After a SnapStart restore (one snapshot, many environments): a new S3 client on next
        use (whatever the factory makes: connections and credentials must not be shared across
        restores), and the pointer due at once, with no backoff carried over from the snapshot:
        the clock of the environment that took it says nothing about now."""
        with self._lock:
            self._client = None
            self._failures, self._retry_at = 0, float("-inf")
            if self._checked_at is not None:
                self._checked_at = float("-inf")

    # -- scheduling --------------------------------------------------------------------------

    def _refresh_due(self) -> bool:
        if not self.settings.follows_latest or self._checked_at is None:
            return False
        now = self._clock()
        if self._failures:
            return now >= self._retry_at
        return now - self._checked_at >= self.settings.refresh_seconds

    def _start(self, kind: str) -> _Job:
        """A new job in its own thread (the lock is held)."""
        job = _Job(kind)
        self._job = job
        # in the starting request's context (contextvars: OpenTelemetry's current span, so the
        # load's spans are children of the request that started it, TracingMode otel)
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(self._run, job), name=f"model-{kind}")
        thread.daemon = True  # a frozen or ending environment never waits for it
        thread.start()
        return job

    def _run(self, job: _Job) -> None:
        version = None
        try:
            if job.kind == "load":
                version = self._target()
                self._checked_at = self._clock()
                if version in self.refused:
                    raise ModelRefused(self.refused[version])
                self._install(self._load(version))
            else:
                version = self._pointed_version()
                self._checked_at = self._clock()
                if version != self._model.version and version not in self.refused:
                    self._install(self._load(version))
            self._failures, self._retry_at, self._last_error = 0, float("-inf"), None
        except NotVerified as exc:  # may heal: tried again after the backoff
            self._failed(job, f"version {version} did not verify ({exc}); trying again")
        except ModelRefused as exc:  # reported once, when refused
            self._failed(job, f"version {version} was refused ({exc})", retry=job.kind == "load")
            if job.kind == "refresh":  # the registry answered: the next refresh as usual
                self._failures, self._retry_at = 0, float("-inf")
        except Exception as exc:  # S3 unreachable, an object missing, a bad pointer
            reason = f"{type(exc).__name__}: {exc}"
            self._report("failure", version, reason)
            self._failed(job, self._read_failure(exc))
        finally:
            with self._lock:
                self._job = None
            job.done.set()

    def _read_failure(self, exc: Exception) -> str:
        """What a caller's 503 says about a failed registry read: which object is missing (the
        pointer: that nothing is published under this model name), else only the kind of
        failure (the log line has the whole error)."""
        if not isinstance(exc, ObjectMissing):
            return f"the registry could not be read ({type(exc).__name__})"
        if exc.key != self.settings.registry.pointer_key:
            return f"{exc.key} does not exist in the registry's bucket"
        return (
            f"nothing is published as '{self.settings.model_name}' ({exc.key} does not exist "
            "in the registry's bucket); publish it, or serve a published model: ModelName when "
            "deployed, NAME=... for make local-api, invoke and demo"
        )

    def _failed(self, job: _Job, error: str, retry: bool = True) -> None:
        job.error = self._last_error = error
        if not retry:  # a refused new version: the current model serves until the next refresh
            return
        self._failures += 1
        ceiling = min(RETRY_MAX_SECONDS, max(RETRY_FIRST_SECONDS, self.settings.refresh_seconds))
        backoff = min(ceiling, RETRY_FIRST_SECONDS * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + backoff

    def _unavailable(self, job: _Job | None) -> ModelUnavailable:
        name = self.settings.model_name
        if job is not None and not job.done.is_set():
            return ModelUnavailable(
                f"model '{name}' is still loading from the registry; retry in a few seconds"
            )
        wait = max(0.0, self._retry_at - self._clock())
        return ModelUnavailable(
            f"model '{name}' could not be loaded: {self._last_error}; "
            f"the next attempt is in {wait:.0f} s"
        )

    # -- reports (delivered in the caller's thread) -------------------------------------------

    def _report(self, *report: Any) -> None:
        with self._lock:
            self._reports.append(report)

    def _deliver_reports(self) -> None:
        if not self._reports:
            return
        with self._lock:
            reports, self._reports = self._reports, []
        for kind, *args in reports:
            (self._on_loaded if kind == "loaded" else self._on_failure)(*args)

    # -- registry reads --------------------------------------------------------------------

    def _s3(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _body(self, key: str, version_id: str | None = None) -> Any:
        """The object's streaming body (the object version `version_id` when the pointer
        recorded one: a key written again cannot serve other bytes); ObjectMissing when the
        registry has no such object."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            return self._s3().get_object(Bucket=self.settings.bucket, Key=key, **extra)["Body"]
        except Exception as exc:
            if object_missing(exc):
                raise ObjectMissing(self.settings.bucket, key) from exc
            raise

    def _read_bytes(self, key: str, version_id: str | None = None) -> bytes:
        body = self._body(key, version_id)
        try:
            return body.read()
        finally:
            body.close()

    def _pointed_version(self) -> int:
        """The version latest.json names (the whole pointer is kept: its canary, `pointer`).
        A pointer refused by the one validator is an error (the served model stays, the read
        is retried with backoff) and `pointer_refused` says why; a new pointer document lifts
        the refusals of versions (it may name them again on purpose, after a repair)."""
        raw = self._read_bytes(self.settings.registry.pointer_key)
        try:
            pointer = Pointer.parse(raw)
        except ValueError as exc:
            self.pointer_refused = str(exc)
            raise
        previous, self.pointer, self.pointer_refused = self.pointer, pointer, None
        if previous is not None and _moved(previous, pointer):
            self.refused.clear()
            self._unverified.clear()
        if pointer.canary_refused and (previous is None or _moved(previous, pointer)):
            self._report("failure", None, f"canary refused: {pointer.canary_refused}")
        return pointer.version

    def health(self) -> dict[str, Any]:
        """What is true now, without I/O, for /health (and a list of several models): the
        version served, what the pointer names, what was refused and why, the last error, and
        a status a deploy hook, a smoke test or an alarm can read: "ok" (serving what the
        pointer names, nothing failing), "degraded" (serving, but the pointer or the version it
        names is refused or retrying, or the last refresh failed), "starting" (nothing served
        yet and nothing failed: no load tried, or the first one still running) or
        "unavailable" (nothing to serve: a load failed or the version was refused). A version
        the pointer names that is still loading is "loading", not a fault."""
        model, pointer = self._model, self.pointer
        pointed = pointer.version if pointer is not None and self.settings.follows_latest else None
        problems = {
            "pointer_refused": self.pointer_refused,
            "canary_refused": pointer.canary_refused if pointer is not None else None,
            "last_error": self._last_error,
        }
        # the pointer names another version: still loading (ok), or refused or retrying
        upgrading = model is not None and pointed is not None and pointed != model.version
        stuck = upgrading and (pointed in self.refused or pointed in self._unverified)
        failed = any(problems.values()) or self.refused or self._unverified
        status = "ok" if model is not None else "unavailable" if failed else "starting"
        if model is not None and (any(problems.values()) or stuck):
            status = "degraded"
        return {
            "status": status,
            "served": None if model is None else model.version,
            "pointer": None
            if pointer is None
            else {
                "version": pointer.version,
                "revision": pointer.revision,
                "canary": None
                if pointer.canary is None
                else {"version": pointer.canary.version, "share": pointer.canary.percent},
            },
            **problems,
            "loading": pointed if upgrading and not stuck else None,
            "refused": {str(v): reason for v, reason in self.refused.items()},
            "retrying": {str(v): n for v, n in self._unverified.items()},
        }

    def _target(self) -> int:
        if self.settings.follows_latest:
            return self._pointed_version()
        return int(self.settings.model_version)

    def _object_versions(self, version: int) -> dict[str, str]:
        """The S3 object version ids the pointer recorded for `version`'s files ({} when it
        recorded none: an unversioned bucket, an older pointer; read by key then)."""
        if self.settings.follows_latest and self.pointer is not None:
            return self.pointer.object_versions(version) or {}
        return dict(self.object_versions or {})

    # -- loading ---------------------------------------------------------------------------

    def _install(self, model: LoadedModel) -> None:
        with self._lock:
            previous, self._model = self._model, model
        if previous is not None and previous.path and previous.path != model.path:
            _remove(previous.path)  # the old interpreter keeps its mapping until it is freed
        self._report("loaded", model)

    def _refuse(self, version: int, reason: str) -> ModelRefused:
        self.refused[version] = reason
        self._report("failure", version, reason)
        return ModelRefused(reason)

    def _load(self, version: int) -> LoadedModel:
        started = time.perf_counter()
        registry = self.settings.registry
        ids = self._object_versions(version)
        manifest_bytes = self._read_bytes(registry.manifest_key(version), ids.get(MANIFEST_FILE))
        try:
            manifest = documents.loads(manifest_bytes, documents.MANIFEST)
        except ValueError as exc:  # not JSON at all: checked after the signature, refused then
            manifest = exc
        signature_ms = None
        if self.settings.signature_key is not None:
            t = time.perf_counter()
            with self._span("signature"):
                self._check_signature(version, manifest_bytes, ids.get(SIGNATURE_FILE))
            signature_ms = (time.perf_counter() - t) * 1000
        expected, parsed = self._check_manifest(manifest, version)
        model_key = registry.model_key(version)
        size = expected["size"]
        if self.admit is not None and (reason := self.admit(size)) is not None:
            raise self._refuse(version, reason)
        path = None
        if size > self.settings.memory_max_bytes:
            path = os.path.join(
                self.settings.cache_dir, self.settings.model_name, str(version), MODEL_FILE
            )

        t0 = time.perf_counter()
        with self._span("download"):
            if path is not None:
                self._make_room(version, model_key, expected)
            try:
                got_size, sha256, content = self._download(
                    model_key, path, size, version_id=ids.get(MODEL_FILE)
                )
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise self._refuse(
                    version,
                    f"{self.settings.cache_dir} ran out of space for {MODEL_FILE} "
                    f"({size:,} bytes): raise the function's EphemeralStorage",
                ) from None
        t1 = time.perf_counter()
        with self._span("verify"):
            self._verify(version, got_size, sha256, expected, path)
        t2 = time.perf_counter()
        from mlcore.images import InputSpec
        from mlcore.predictor import ModelMismatch

        with self._span("load"):
            try:
                predictor = _ready(self._build_predictor, path or content, manifest, parsed)
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
            spec=None if parsed else InputSpec.from_manifest(manifest),
            labels=list(parsed.labels or ()) if parsed else [str(x) for x in manifest["labels"]],
            path=path,
            size=size,
            timings_ms={
                "download": (t1 - t0) * 1000,
                "verify": (t2 - t1) * 1000,
                "build": (t3 - t2) * 1000,
                "total": (t3 - started) * 1000,
                **({"signature": signature_ms} if signature_ms is not None else {}),
            },
            generic=parsed,
        )

    def _check_signature(
        self, version: int, manifest_bytes: bytes, version_id: str | None = None
    ) -> None:
        """Refuse the version unless its OpenSSF bundle (mlcore.model_signature) or, signed
        before those, its SIGNATURE_FILE signs this name, version and manifest."""
        from mlcore.model_signature import BUNDLE_FILE, check_bundle
        from mlcore.signing import verify as verify_signature

        keys = self.settings.signature_key
        bundle = self._read_if_stored(version, BUNDLE_FILE) if keys.ec else None
        if bundle is not None or not keys.rsa:  # signature.json only with an RSA key listed
            try:
                check_bundle(bundle, keys.ec, manifest_bytes)
            except ValueError as exc:
                raise self._refuse(version, f"{BUNDLE_FILE} is refused: {exc}") from None
            return
        key = self.settings.registry.file_key(version, SIGNATURE_FILE)
        try:
            document = self._read_bytes(key, version_id)
        except Exception as exc:
            if not object_missing(exc):
                raise  # the registry could not be read: retried, not refused
            raise self._refuse(
                version,
                f"{SIGNATURE_FILE} is missing: the version is unsigned and MANIFEST_PUBLIC_KEY "
                "requires a signature",
            ) from None
        try:
            signature = read_signature(document)
        except ValueError as exc:
            raise self._refuse(version, f"{SIGNATURE_FILE} is not usable: {exc}") from None
        import hashlib  # only for signed versions (_sha256 says why not at import)

        statement = signed_statement(
            self.settings.model_name, version, hashlib.sha256(manifest_bytes).hexdigest()
        )
        if not any(verify_signature(key, statement, signature) for key in keys.rsa):
            raise self._refuse(
                version,
                "manifest signature does not verify with MANIFEST_PUBLIC_KEY (the manifest "
                "changed after signing, or was signed with another key)",
            )

    def _read_if_stored(self, version: int, filename: str) -> bytes | None:
        try:
            return self._read_bytes(self.settings.registry.file_key(version, filename))
        except Exception as exc:
            if not object_missing(exc):
                raise  # the registry could not be read: retried, not refused
            return None

    def _verify(self, version, size, sha256, expected, path) -> None:
        if size != expected["size"] or sha256 != expected["sha256"]:
            if path:
                _remove(path)
            reason = (
                f"{MODEL_FILE} is {size} bytes with sha256 {sha256[:12]}..., manifest says "
                f"{expected['size']} bytes with sha256 {expected['sha256'][:12]}..."
            )
            attempts = self._unverified[version] = self._unverified.get(version, 0) + 1
            if attempts >= VERIFY_ATTEMPTS:
                raise self._refuse(version, f"{reason} ({attempts} attempts)")
            self._report("failure", version, reason)
            raise NotVerified(reason)
        self._unverified.pop(version, None)

    def _make_room(self, version: int, key: str, expected: dict[str, Any]) -> None:
        """Room in cache_dir for the new model: beside the current one if both fit, else in
        place of it (after a verifying pass that stores nothing), else the version is refused."""
        cache_dir = self.settings.cache_dir
        os.makedirs(cache_dir, exist_ok=True)
        needed = expected["size"] + DISK_SLACK_BYTES
        free = self._disk_free(cache_dir)
        if needed <= free:
            return
        current = self._model
        reclaimable = current.size if current is not None and current.path else 0
        if needed > free + reclaimable:
            raise self._refuse(
                version,
                f"{MODEL_FILE} is {expected['size']:,} bytes and cannot fit in {cache_dir} "
                f"({free + reclaimable:,} bytes free at most): raise the function's "
                "EphemeralStorage (template parameter) or publish a smaller model",
            )
        # Only in place of the current model: make sure this version is good before that goes.
        size, sha256, _ = self._download(
            key,
            None,
            expected["size"],
            keep=False,
            version_id=self._object_versions(version).get(MODEL_FILE),
        )
        self._verify(version, size, sha256, expected, None)
        with self._lock:
            released, self._model = self._model, None  # requests now wait for the new one
        if released is not None and released.path:
            _remove(released.path)
        del released, current  # the interpreter (and its mapping of the file) goes with them

    def _check_manifest(
        self, manifest: Any, version: int
    ) -> tuple[dict[str, Any], GenericManifest | None]:
        """Check the manifest whole (mlcore.documents: the published schema; a generic model's
        also by mlcore.generic) and that it describes this version; returns the model file's
        size and sha256, and the generic manifest if it is one."""
        try:
            if isinstance(manifest, ValueError):
                raise manifest
            documents.check(manifest, documents.MANIFEST)
        except ValueError as exc:
            raise self._refuse(version, f"manifest is not usable: {exc}") from None
        from mlcore import generic

        if generic.kind_of(manifest) == generic.KIND:
            try:
                parsed = generic.parse(manifest)
                if parsed.name != self.settings.model_name or parsed.version != version:
                    raise ValueError(f"it describes {parsed.name} version {parsed.version}")
            except ValueError as exc:
                raise self._refuse(version, f"manifest is not usable: {exc}") from None
            return {"size": parsed.size, "sha256": parsed.sha256}, parsed
        try:
            return check_manifest(manifest, self.settings.model_name, version), None
        except ValueError as exc:
            raise self._refuse(version, f"manifest is not usable: {exc}") from None

    def _download(
        self,
        key: str,
        path: str | None,
        expected_size: int,
        keep: bool = True,
        version_id: str | None = None,
    ) -> tuple[int, str, bytes | None]:
        """Stream the object, hashing as it arrives: to `path` (never read back), or into
        memory (path None; the bytes are returned), or nowhere (keep=False: a verifying pass).
        Never more than the manifest promises is stored. Returns (size, sha256, bytes or None).

        One GET, read ahead by the client while this thread hashes and writes (measured at
        100 MB against moto_server on 2 cores, 2026-12-01): 2 to 8 concurrent ranged GETs took
        1.7 to 4.3x a plain boto3 get_object there, this single stream 0.8x (the server reads
        the whole object for every range); hashing and writing in two threads gained nothing:
        the pass is CPU-bound (sha256 ~60 ms, the write ~30 ms, the receive ~35 ms, beside the
        server's ~70 ms)."""
        digest = _sha256(expected_size)
        size = 0
        chunks: list[bytes] = []
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.part" if path else None
        body = self._body(key, version_id)
        try:
            if partial:
                os.makedirs(os.path.dirname(partial), exist_ok=True)
            with open(partial, "wb") if partial else contextlib.nullcontext() as out:
                while chunk := body.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > expected_size:  # never store more than the manifest promises
                        break
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    elif keep:
                        chunks.append(chunk)
            if partial:
                os.replace(partial, path)
        finally:
            body.close()
            if partial:
                _remove(partial)
        content = b"".join(chunks) if path is None and keep else None
        return size, digest.hexdigest(), content


def _sha256(size: int) -> Any:
    """A sha256 object for a model of `size` bytes. Above SMALL_MODEL_BYTES, OpenSSL's
    (hashlib): 680 against 78 MiB/s for CPython's own (SHA-NI on this machine, 2026-12-06).
    Up to it, CPython's own HACL* implementation (_sha2, what hashlib uses without OpenSSL):
    importing hashlib maps OpenSSL's libcrypto, 3.7 MiB of every environment's resident memory
    and about 2 ms of its cold start, against 0.2 ms more to hash a 20 KB model. The same
    digest either way (tests/unit/function/test_model_store.py)."""
    if size <= SMALL_MODEL_BYTES:
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:  # another Python: hashlib's
            from hashlib import sha256
    else:
        from hashlib import sha256
    return sha256()


def check_manifest(manifest: Any, name: str, version: int) -> dict[str, Any]:
    """The fields serving relies on, checked (a registry document is hostile until then): the
    model file's size and sha256, or a ValueError saying what is wrong, never another
    exception. Numbers are not coerced from text, floats or booleans."""
    if not isinstance(manifest, dict):
        raise ValueError("it is not a JSON object")
    schema = manifest.get("schema_version")
    if type(schema) is not int or schema not in READABLE_SCHEMAS:
        raise ValueError(f"schema_version {schema!r} is not one of {READABLE_SCHEMAS}")
    described = manifest.get("name"), manifest.get("version")
    if described[0] != name or type(described[1]) is not int or described[1] != version:
        raise ValueError(f"it describes {described[0]!r} version {described[1]!r}")
    files = manifest.get("files")
    expected = files.get(MODEL_FILE) if isinstance(files, dict) else None
    if not isinstance(expected, dict):
        raise ValueError(f"it lists no {MODEL_FILE} in 'files'")
    size, sha256 = expected.get("size"), expected.get("sha256")
    if type(size) is not int or size < 0:
        raise ValueError(f"{MODEL_FILE} size {size!r} is not an integer >= 0")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"{MODEL_FILE} sha256 {sha256!r} is not 64 hex digits")
    from mlcore.images import InputSpec

    InputSpec.from_manifest(manifest)
    labels = manifest.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ValueError("it lists no labels")
    return {"size": size, "sha256": sha256.lower()}


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _ready(build, source: str | bytes, manifest: dict, parsed: GenericManifest | None) -> Predictor:
    """The model built and run once on zeros (warmed up). An image classifier is checked
    against its manifest by Predictor; a generic model's signatures must be its manifest's."""
    import numpy as np

    from mlcore.predictor import ModelMismatch
    from mlcore.signatures import mismatch, zero_inputs

    if parsed is None:
        predictor = build(source, manifest)
        predictor.predict(np.zeros((1, *predictor.instance_shape), np.float32))
        return predictor
    predictor = build(source, None)
    problem = mismatch(predictor.signatures(), parsed.signatures)
    if problem:
        raise ModelMismatch(problem)
    predictor.run(parsed.default, zero_inputs(parsed.default))
    return predictor


def _moved(before: Pointer, after: Pointer) -> bool:
    """Whether the pointer document changed (another revision, or another document)."""
    return (before.revision, before.version, before.updated_at) != (
        after.revision,
        after.version,
        after.updated_at,
    ) or before.extra != after.extra


def object_missing(exc: Exception) -> bool:
    """Whether a read failed because the object does not exist: boto3's NoSuchKey, obstore's
    NotFoundError (whatever its bases), a FileNotFoundError, the tests' in-memory S3's KeyError.
    Anything else (S3 unreachable, denied) is a failed read, retried, never a refusal."""
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return (
        code in ("NoSuchKey", "404", "NotFound")
        or type(exc).__name__ == "NotFoundError"
        or isinstance(exc, FileNotFoundError | KeyError)
    )


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def create_s3_client() -> Any:
    """The function's S3 client (s3_reader: obstore, bounded timeouts, Lambda's credentials;
    the endpoint from the standard AWS_ENDPOINT_URL_S3). Tests replace the store's factory."""
    import s3_reader

    return s3_reader.create_client()


def create_store(clock: Callable[[], float] = time.monotonic, **hooks: Any) -> ModelStore:
    """A store configured from the environment (hooks: span, on_loaded, on_failure)."""
    return ModelStore(
        load_settings(), client_factory=lambda: create_s3_client(), clock=clock, **hooks
    )
