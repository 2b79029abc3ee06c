"""The monitor's configuration, read once from the environment the template sets.

As for the inference function (functions/inference/config.py): template Parameters ->
Globals.Function.Environment -> here, and the template is the only place with defaults; a
variable missing here is an error naming it. The metrics namespace and service name (the
inference function's, the same stack) are read by Powertools itself.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlcore.registry import Registry
from mlcore.settings import integer, registry_location


@dataclass(frozen=True)
class MonitorSettings:
    bucket: str
    prefix: str
    model_name: str
    model_names: tuple[str, ...]  # the inference function's (mlcore.settings.model_names)
    model_version: str  # "latest" (follow the pointer) or a pinned positive integer, as text
    window_minutes: int  # the window judged each run (the schedule's rate too)
    min_predictions: int  # fewest predictions in a window for drift figures
    lag_seconds: int  # the window ends this long before the run (late metrics)

    @property
    def registry(self) -> Registry:
        return Registry(self.prefix, self.model_name)

    def of(self, name: str) -> MonitorSettings:
        """These settings for another served model."""
        return dataclasses.replace(self, model_name=name)


def load_settings(environ: Mapping[str, str] | None = None) -> MonitorSettings:
    """Settings from the environment; a ValueError names the variable that is wrong."""
    environ = os.environ if environ is None else environ
    return MonitorSettings(
        **registry_location(environ),
        window_minutes=integer(environ, "MONITOR_WINDOW_MINUTES", 1),
        min_predictions=integer(environ, "MONITOR_MIN_PREDICTIONS", 1),
        lag_seconds=integer(environ, "MONITOR_LAG_SECONDS", 0),
    )
