"""Several models in one deployment, as SageMaker's multi-model endpoints serve them: each served
name has its own ModelStore (pointer, refresh, verification, refusals) and its own ModelChooser
(its canary), made on first use; models load on their first request and the least recently
used are evicted to stay within the memory and /tmp budgets.

Which names (MODEL_NAMES, template parameter ModelNames; mlcore.settings.model_names): MODEL_NAME
alone, a list, or "*" for every model under the prefix, found by listing it (at most once every
LIST_SECONDS, and again at most that often when a request names a model not listed yet, so a
model published after the listing is found without a flood of unknown names costing a listing
each). A name not served is 404 MODEL_NOT_FOUND naming the ones that are.

Budgets: the verified models held together take at most MODELS_MEMORY_BYTES of memory (the
template's ModelsMemoryBytes; 0 means half the function's memory, canary.memory_budget), counting
each model's file size whether it was built from memory or maps its file in /tmp (the
interpreter touches every weight either way). Before a model is downloaded, the store asks
`admit(size)` (ModelStore.admit): the least recently used other models are released
(ModelStore.release) until it fits, in memory and, for a model kept in /tmp, on the disk. A model
larger than the whole budget is refused with that reason (its store remembers it: 503 naming
it, /health says why) while the others keep serving. An evicted model loads again on its next
request, verified again like any load.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canary import ModelChooser
from canary import memory_budget as half_the_memory
from errors import ApiError
from mlcore.deadline import Deadline
from mlcore.registry import check_model_name, is_decimal
from mlcore.settings import EVERY_MODEL
from model_store import DISK_SLACK_BYTES, LoadedModel, ModelStore, disk_free

LIST_SECONDS = 10.0  # the wildcard's listing is re-read at most this often
MAX_LISTED = 1000  # names kept from one listing (a bound on the stores one environment makes)


def memory_budget(environ=None) -> int:
    """MODELS_MEMORY_BYTES, or half the function's memory when it is 0 or unset."""
    import os

    environ = os.environ if environ is None else environ
    raw = environ.get("MODELS_MEMORY_BYTES", "").strip()
    return int(raw) if is_decimal(raw) and int(raw) > 0 else half_the_memory(environ)


def _disk_free(path: str) -> int:
    import os

    os.makedirs(path, exist_ok=True)
    return disk_free(path)


@dataclass
class Served:
    """One served name: its store and its chooser."""

    name: str
    store: ModelStore
    chooser: ModelChooser


class ModelSet:
    """The served models by name. default(): the default model's store (app.get_store, looked
    up on each call so tests may replace it; the others are made from it: ModelStore.named);
    default_chooser(): its chooser; make_chooser(store getter): another name's."""

    def __init__(
        self,
        default: Callable[[], ModelStore],
        default_chooser: Callable[[], ModelChooser],
        make_chooser: Callable[[Callable[[], ModelStore]], ModelChooser],
        budget: Callable[[], int] = memory_budget,
        disk_free: Callable[[str], int] = _disk_free,
        clock: Callable[[], float] = time.monotonic,
        on_evicted: Callable[[str, LoadedModel, str], None] = lambda name, model, why: None,
    ):
        self._default, self._default_chooser = default, default_chooser
        self._make_chooser, self._on_evicted = make_chooser, on_evicted
        self._budget, self._disk_free, self._clock = budget, disk_free, clock
        self._lock = threading.RLock()
        self._owner: ModelStore | None = None  # the default store the others were made from
        self._default_entry: Served | None = None  # the default model's, made with _owner
        self._others: dict[str, Served] = {}
        self._recency: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._listed: tuple[str, ...] = ()
        self._listed_at = float("-inf")
        self._list_error: str | None = None

    # -- which names -----------------------------------------------------------------------

    @property
    def default_name(self) -> str:
        return self._default().settings.model_name

    @property
    def every_model(self) -> bool:
        return self._default().settings.model_names == (EVERY_MODEL,)

    def names(self, deadline: Deadline | None = None) -> tuple[str, ...]:
        """The names served: the configured list, or (wildcard) the prefix's listing."""
        settings = self._default().settings
        if not self.every_model:
            return settings.model_names
        if self._clock() - self._listed_at >= LIST_SECONDS:
            self._list(deadline or Deadline(settings.deadline_seconds))
        return self._listed

    def names_now(self) -> tuple[str, ...]:
        """names() without I/O: the configured list, or the last listing (before the first
        one: the default name)."""
        if not self.every_model:
            return self._default().settings.model_names
        return self._listed or (self.default_name,)

    def _list(self, deadline: Deadline) -> None:
        """Lists the prefix in a thread, waiting at most until the deadline; a failed or slow
        listing keeps the last one (and is retried after LIST_SECONDS)."""
        store = self._default()
        result: list[Any] = []

        def run() -> None:
            try:
                result.append(store.list_names())
            except Exception as exc:  # S3 unreachable or denied: the last listing stays
                result.append(exc)

        with self._lock:
            self._listed_at = self._clock()
        thread = threading.Thread(target=run, name="model-list", daemon=True)
        thread.start()
        thread.join(deadline.remaining())
        if not result:
            self._list_error = "listing the registry took longer than the request's deadline"
        elif isinstance(result[0], Exception):
            self._list_error = f"the registry could not be listed ({type(result[0]).__name__})"
        else:
            valid = [n for n in result[0] if _valid(n)][:MAX_LISTED]
            self._listed, self._list_error = tuple(sorted(valid)), None

    def served(self, name: str, deadline: Deadline | None = None) -> Served:
        """The name's store and chooser (made on first use), marked most recently used; 404
        MODEL_NOT_FOUND for a name not served."""
        default = self._default()
        entry = self._default_entry
        if entry is not None and name == entry.name and self._owner is default and not self._others:
            # the default model while no other one has been asked for (most deployments: one
            # model): nothing to mark, its recency only orders it among others. The first
            # request for another name takes the path below, which marks each one it serves.
            return entry
        if name != default.settings.model_name and name not in self.names(deadline):
            listed = ", ".join(self.names(deadline)[:20]) or "none"
            why = f" ({self._list_error})" if self.every_model and self._list_error else ""
            raise ApiError(
                "MODEL_NOT_FOUND",
                f"model '{name[:100]}' not found; the models served here are {listed}{why}",
            )
        with self._lock:
            if self._owner is not default:  # a new default store (tests): start again
                self._owner, self._others = default, {}
                self._recency.clear()
                default_name = default.settings.model_name
                self._default_entry = Served(default_name, default, self._default_chooser())
            self._recency[name] = None
            self._recency.move_to_end(name)
            if name == default.settings.model_name:
                entry = self._default_entry
            else:
                entry = self._others.get(name)
                if entry is None:
                    store = default.named(name)
                    entry = self._others[name] = Served(
                        name, store, self._make_chooser(lambda: store)
                    )
            if entry.store.admit is None:
                entry.store.admit = lambda size: self._admit(name, entry.store, size)
            return entry

    def get(self, name: str, deadline: Deadline) -> LoadedModel:
        """The name's stable model, waiting for a load at most until the deadline."""
        return self.served(name, deadline).store.get(deadline)

    def entries(self) -> list[Served]:
        """The names made so far, most recently used first (without I/O)."""
        with self._lock:
            default = self._default()
            known = {default.settings.model_name: None, **dict.fromkeys(self._others)}
            order = [n for n in reversed(self._recency) if n in known]
            order += [n for n in known if n not in order]
        return [self.served_entry(n) for n in order]

    def served_entry(self, name: str) -> Served:
        default = self._default()
        if name == default.settings.model_name:
            return Served(name, default, self._default_chooser())
        return self._others[name]

    # -- budgets ---------------------------------------------------------------------------

    def _admit(self, name: str, store: ModelStore, size: int) -> str | None:
        """Before `name` downloads a model of `size` bytes: None once it fits (the least
        recently used others released as needed), else why it never can."""
        budget = self._budget()
        if size > budget:
            return (
                f"model '{name}' is {size:,} bytes; the models held together may take "
                f"{budget:,} bytes of memory (ModelsMemoryBytes, else half of MemorySize): "
                "raise MemorySize, or serve this model from a stack of its own"
            )
        settings = store.settings
        on_disk = size > settings.memory_max_bytes
        with self._lock:
            for other in self._least_recent_first(name):
                held = self._held_bytes(exclude=store)
                disk_short = on_disk and (
                    self._disk_free(settings.cache_dir) < size + DISK_SLACK_BYTES
                )
                if held + size <= budget and not disk_short:
                    break
                released = other.store.release()
                if released is not None:
                    why = "memory" if held + size > budget else "/tmp"
                    self._on_evicted(other.name, released, why)
        return None  # what still does not fit on disk, the store itself refuses (_make_room)

    def _least_recent_first(self, name: str) -> list[Served]:
        order = [n for n in self._recency if n != name]
        default = self._default()
        entries = []
        for other in order:
            if other == default.settings.model_name:
                entries.append(Served(other, default, self._default_chooser()))
            elif other in self._others:
                entries.append(self._others[other])
        return [e for e in entries if e.store.current is not None]

    def _held_bytes(self, exclude: ModelStore) -> int:
        """The bytes of the models held now, but `exclude`'s (it is being replaced)."""
        default = self._default()
        stores = [default, *(e.store for e in self._others.values())]
        return sum(s.current.size for s in stores if s is not exclude and s.current is not None)

    def restored(self) -> None:
        """After a SnapStart restore: each other model's store and canary get new clients (the
        default one's are app's to restore)."""
        with self._lock:
            others = list(self._others.values())
        for entry in others:
            entry.store.restored()
            entry.chooser.restored()

    # -- what /health shows --------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per model made so far: the version held (None: not loaded, or evicted) and the
        last problem (a refused version and why), without any I/O or wait."""
        answer = []
        for entry in self.entries():
            model = entry.store.current
            refused = entry.store.refused
            answer.append(
                {
                    "name": entry.name,
                    "loaded": model is not None,
                    "version": model.version if model is not None else None,
                    "refused": {str(v): why for v, why in refused.items()},
                }
            )
        return answer


def _valid(name: str) -> bool:
    try:
        check_model_name(name)
    except ValueError:
        return False
    return True
