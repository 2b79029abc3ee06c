"""A model canary: while the pointer names a canary version and its share, this environment
holds both models and chooses per request (role "stable" or "canary").

The stable store (model_store.ModelStore following `latest`) reads the pointer and keeps it;
the canary is a second store pinned to the canary's version, created when the pointer names
it, loaded in the background (a request never waits for it: until it is ready, or if it is
refused, the stable model answers), dropped when the pointer no longer names it. A canary that
does not fit beside the stable model (in memory: both at most MEMORY_SHARE of the function's
memory; in /tmp: the store refuses what cannot fit) is refused: this environment serves the
stable model only and says so once (`on_skipped`, the CanaryNotServed metric).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from errors import ApiError, ModelUnavailable
from mlcore.deadline import Deadline
from mlcore.registry import CANARY, STABLE, Canary, is_decimal
from model_store import LoadedModel, ModelStore

MEMORY_SHARE = 0.5  # of the function's memory, for the models held in memory together


def memory_budget(environ=os.environ) -> int:
    megabytes = int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 1024)
    return int(megabytes * (1 << 20) * MEMORY_SHARE)


def _named_canary(stable: ModelStore) -> Canary | None:
    """The canary the pointer names, where the stable store follows the pointer."""
    pointer = stable.pointer if stable.settings.follows_latest else None
    return pointer.canary if pointer is not None else None


@dataclass(frozen=True)
class Held:
    """A version this environment serves: the stable one, or the canary the pointer names
    (model None while it loads or once it is refused: `problem` says which)."""

    version: int
    role: str
    model: LoadedModel | None
    problem: str | None = None
    refused: bool = False

    @property
    def state(self) -> str:
        """TF Serving's ModelVersionStatus.State: AVAILABLE, LOADING, or END (refused)."""
        return "AVAILABLE" if self.model else "END" if self.refused else "LOADING"


def find(entries: list[Held], version: str | None, label: str | None) -> Held:
    """The held version a path names by version or by label (stable, canary); 404
    VERSION_NOT_FOUND naming what is held."""
    if label is not None:
        found = [e for e in entries if e.role == label]
        if not found:
            now = ", ".join(f"{e.role} (version {e.version})" for e in entries)
            raise ApiError(
                "VERSION_NOT_FOUND",
                f"label '{label[:40]}' names no version now; the labels are {STABLE} and "
                f"{CANARY} (while a canary runs); now: {now}",
            )
    else:
        found = [e for e in entries if is_decimal(version) and e.version == int(version)]
        if not found:
            listed = ", ".join(f"{e.version} ({e.role})" for e in entries)
            raise ApiError(
                "VERSION_NOT_FOUND",
                f"version '{version[:40]}' is not served here; the versions are {listed}",
            )
    return found[0]


class ModelChooser:
    """Chooses the model that answers a request: choose(deadline) -> (model, role), the stable
    model or, for the canary's share of requests, the canary. (Not an HTTP router: that is
    router.Router.) stable(): the stable store (looked up on each call, so tests may replace
    it); draw(): uniform in [0, 1); on_skipped(version, reason)."""

    def __init__(
        self,
        stable: Callable[[], ModelStore],
        draw: Callable[[], float] = random.random,
        on_skipped: Callable[[int, str], None] = lambda version, reason: None,
        budget: Callable[[], int] = memory_budget,
        on_canary_failure: Callable[[int | None, str], None] | None = None,
    ):
        self._on_canary_failure = on_canary_failure
        self._stable = stable
        self._draw = draw
        self._on_skipped = on_skipped
        self._budget = budget
        self._canary: ModelStore | None = None
        self._owner: ModelStore | None = None  # the stable store the canary store belongs to
        self._skipped: set[int] = set()

    def canary_store(self, stable: ModelStore) -> ModelStore | None:
        """The store of the canary the pointer names now (made on first need), or None."""
        canary = _named_canary(stable)
        if canary is None:
            self._canary = None
            return None
        current = self._held_for(stable, canary.version)
        if current is None:
            current = self._canary = self._make(stable, canary.version)
            self._owner = stable
        return current

    def _held_for(self, stable: ModelStore, version: int) -> ModelStore | None:
        """The canary store held, if it was made for this stable store and this version."""
        store = self._canary
        if store is None or self._owner is not stable:
            return None
        return store if store.settings.model_version == str(version) else None

    def _make(self, stable: ModelStore, version: int) -> ModelStore:
        def admit(size: int) -> str | None:
            served = stable.current
            in_memory = size if size <= stable.settings.memory_max_bytes else 0
            if served is not None and served.path is None:
                in_memory += served.size
            if in_memory > self._budget():
                return (
                    f"the canary ({size:,} bytes) does not fit in memory beside the stable model "
                    f"({in_memory:,} bytes together, {self._budget():,} allowed)"
                )
            return None

        return stable.pinned(version, on_failure=self._on_canary_failure, admit=admit)

    def percent(self, stable: ModelStore) -> int:
        pointer = stable.pointer
        canary = pointer.canary if pointer is not None else None
        return canary.percent if canary is not None else 0

    def choose(self, deadline: Deadline) -> tuple[LoadedModel, str]:
        stable = self._stable()
        model = stable.get(deadline)  # the stable model, waiting as ever (503 after)
        store = self.canary_store(stable)
        if store is None:
            return model, STABLE
        version = int(store.settings.model_version)
        if version in store.refused:
            if version not in self._skipped:
                self._skipped.add(version)
                self._on_skipped(version, store.refused[version])
            return model, STABLE
        try:
            canary = store.get(Deadline(0))  # never waits: loads in the background
        except ModelUnavailable:
            return model, STABLE
        if self._draw() * 100 < self.percent(stable):
            return canary, CANARY
        return model, STABLE

    def held(self, deadline: Deadline) -> list[Held]:
        """The stable version (waiting for it as choose() does) and the canary, if one runs."""
        stable = self._stable()
        model = stable.get(deadline)
        entries = [Held(model.version, STABLE, model)]
        store = self.canary_store(stable)
        if store is not None:
            version = int(store.settings.model_version)
            if version in store.refused:
                reason = f"refused: {store.refused[version]}"
                entries.append(Held(version, CANARY, None, reason, refused=True))
            else:
                try:
                    entries.append(Held(version, CANARY, store.get(Deadline(0))))
                except ModelUnavailable as exc:  # loading (started now if it was not)
                    entries.append(Held(version, CANARY, None, exc.message))
        return entries

    def canary_now(self, stable: ModelStore) -> dict[str, Any] | None:
        """The canary the pointer names, as this environment holds it now: its version and
        TF Serving state (LOADING also before its load starts), without starting or waiting
        for anything (the open GET /health)."""
        canary = _named_canary(stable)
        if canary is None:
            return None
        version = canary.version
        store = self._held_for(stable, version)
        if store is None:
            return {"version": version, "state": "LOADING"}
        if version in store.refused:
            return {"version": version, "state": "END", "refused": store.refused[version]}
        return {"version": version, "state": "AVAILABLE" if store.current else "LOADING"}

    def pick(
        self, deadline: Deadline, version: str | None = None, label: str | None = None
    ) -> tuple[LoadedModel, str]:
        """The model a request names by version (any version held) or label (stable, canary),
        else choose()'s. 404 VERSION_NOT_FOUND naming what is held; 503 for a held version
        that cannot answer now (the canary loading, or refused)."""
        if version is None and label is None:
            return self.choose(deadline)
        entry = find(self.held(deadline), version, label)
        if entry.model is None:
            raise ModelUnavailable(f"version {entry.version} ({entry.role}): {entry.problem}")
        return entry.model, entry.role

    def restored(self) -> None:
        """After a SnapStart restore: the canary store's clients are made again too."""
        if self._canary is not None:
            self._canary.restored()
