"""What both functions read from their environment the same way: required variables and the
registry location (bucket, prefix, model name, version).

Template Parameters -> Globals.Function.Environment -> here: the template is the only place
with defaults, so a variable missing here is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlcore.registry import check_model_name, check_version

LATEST = "latest"  # MODEL_VERSION that follows the pointer (latest.json)


def required(environ: Mapping[str, str], name: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        raise ValueError(
            f"{name} is not set (template.yaml's Globals.Function.Environment sets it)"
        )
    return raw


def registry_location(environ: Mapping[str, str]) -> dict[str, str]:
    """bucket, prefix, model_name and model_version ("latest" or a positive integer, as text),
    checked; a ValueError names the variable that is wrong."""
    name = required(environ, "MODEL_NAME")
    try:
        check_model_name(name)
    except ValueError as exc:
        raise ValueError(f"MODEL_NAME: {exc}") from None
    version = required(environ, "MODEL_VERSION")
    if version != LATEST:
        try:
            version = str(check_version(version))
        except ValueError:
            raise ValueError(
                f"MODEL_VERSION={version!r}: must be 'latest' or a positive integer"
            ) from None
    return {
        "bucket": required(environ, "MODEL_BUCKET"),
        # an empty prefix is allowed: the registry then starts at the bucket's root
        "prefix": environ.get("MODEL_PREFIX", "").strip().strip("/"),
        "model_name": name,
        "model_version": version,
    }
