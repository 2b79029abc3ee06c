"""Lambda SnapStart runtime hooks (template parameter SnapStart=true).

With SnapStart, Lambda runs init once when a version is published, snapshots the memory and
disk of that environment, and resumes every new environment of the version from the snapshot.
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html)

- before the snapshot: the model loaded and verified, so restored environments serve at once.
  The init's preload (app.preload_model) waits at most DEADLINE_SECONDS; this waits for the
  background load to end, within SNAPSHOT_LOAD_SECONDS.
- after each restore: what one snapshot must not share across environments is made again: the
  S3 client (its connections and credentials: the store's factory makes a new one, whatever
  client it makes), the random state (capture sampling), the refresh clock (the pointer is
  due at once); then the pointer is re-read within RESTORE_CHECK_SECONDS, well inside
  Lambda's 10 s for after-restore hooks, so a version published or rolled back since the
  snapshot reaches this environment now rather than at its next refresh.

`snapshot_restore_py` is provided by Lambda's Python runtime (3.12+); requirements.txt pins
the same package for the tests and the local runner, which plays both hooks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from errors import ModelUnavailable
from mlcore.deadline import Deadline

SNAPSHOT_LOAD_SECONDS = 60.0
RESTORE_CHECK_SECONDS = 2.0


def before_snapshot(store: Any, log: Any, timeout: float = SNAPSHOT_LOAD_SECONDS) -> bool:
    """Load (or join the load of) the model and wait for it; True when one is loaded."""
    try:
        store.get(Deadline(timeout))
    except ModelUnavailable:
        pass
    store.wait(timeout)
    model = store.current
    if model is None:
        log.warning("snapshot taken without a model; restored environments load it")
        return False
    log.info("model loaded before the snapshot", extra={"model_version": model.version})
    return True


def after_restore(store: Any, log: Any, budget: float = RESTORE_CHECK_SECONDS) -> None:
    """Fresh clients, random state and refresh clock; the pointer re-read within `budget`."""
    random.seed()  # from os.urandom: each restored environment draws its own samples
    store.restored()
    try:
        store.get(Deadline(budget))  # with a model: starts the refresh; without: the load
    except ModelUnavailable:
        pass
    store.wait(budget)
    model = store.current
    log.info(
        "restored from a snapshot",
        extra={"model_version": model.version if model is not None else None},
    )


def register(
    get_store: Callable[[], Any], log: Any, also_restore: Callable[[], None] | None = None
) -> bool:
    """Register both hooks with the runtime; False where snapshot_restore_py is absent.
    also_restore: what else to make again after a restore (the canary's store)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False

    def restore() -> None:
        if also_restore is not None:
            also_restore()
        after_restore(get_store(), log)

    register_before_snapshot(lambda: before_snapshot(get_store(), log))
    register_after_restore(restore)
    return True
