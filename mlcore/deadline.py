"""One time limit shared by every step of a piece of work (an invocation, a model load).

An invocation's deadline is the time Lambda leaves it (``context.get_remaining_time_in_millis()``)
minus a margin to answer in, and never more than a cap; where there is no invocation (a
preload during init) the cap alone applies. Every step that may wait (the registry, image
decoding) asks the same deadline how long it may take, so the steps together cannot run the
function out of time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Deadline:
    """A point in time on a monotonic clock; ``remaining()`` seconds until it (never < 0)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.at = clock() + max(0.0, seconds)

    @classmethod
    def for_invocation(
        cls,
        context: Any,
        margin_seconds: float,
        cap_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The invocation's remaining time minus the margin, at most the cap. Without a
        context (or one that cannot tell its remaining time) the cap alone."""
        seconds = cap_seconds
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining_ms):
            seconds = min(cap_seconds, remaining_ms() / 1000 - margin_seconds)
        return cls(seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.at

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
