"""What both functions read from their environment the same way: required variables and the
registry location (bucket, prefix, model name, version).

Template Parameters -> Globals.Function.Environment -> here: the template is the only place
with defaults, so a variable missing here is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlcore.registry import check_model_name, check_version, is_decimal

LATEST = "latest"  # MODEL_VERSION that follows the pointer (latest.json)
EVERY_MODEL = "*"  # MODEL_NAMES that serves every model under the registry's prefix


def required(environ: Mapping[str, str], name: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        raise ValueError(
            f"{name} is not set (template.yaml's Globals.Function.Environment sets it)"
        )
    return raw


def integer(environ: Mapping[str, str], name: str, minimum: int) -> int:
    """A required setting in ASCII digits, at least ``minimum``, else a ValueError naming it."""
    raw = required(environ, name)
    if not is_decimal(raw) or int(raw) < minimum:
        raise ValueError(f"{name}={raw!r}: must be an integer >= {minimum}")
    return int(raw)


def registry_location(environ: Mapping[str, str]) -> dict[str, str]:
    """bucket, prefix, model_name, model_names (model_names()) and model_version ("latest" or
    a positive integer, as text), checked; a ValueError names the variable that is wrong."""
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
        "model_names": model_names(environ.get("MODEL_NAMES", ""), name),
        "bucket": required(environ, "MODEL_BUCKET"),
        # an empty prefix is allowed: the registry then starts at the bucket's root
        "prefix": environ.get("MODEL_PREFIX", "").strip().strip("/"),
        "model_name": name,
        "model_version": version,
    }


def model_names(raw: str, default: str) -> tuple[str, ...]:
    """MODEL_NAMES (template parameter ModelNames): "" serves MODEL_NAME alone (a one-model
    stack, as before the parameter existed); "*" every model under the prefix (EVERY_MODEL,
    found by listing it); "a,b,c" those names, MODEL_NAME first (it is /predict's default, and
    always served). A ValueError names the wrong entry."""
    raw = raw.strip()
    if raw == EVERY_MODEL:
        return (EVERY_MODEL,)
    names = [default]
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            check_model_name(entry)
        except ValueError as exc:
            raise ValueError(
                f"MODEL_NAMES: {exc}; give names separated by commas, or {EVERY_MODEL} for every "
                "model under the prefix"
            ) from None
        if entry not in names:
            names.append(entry)
    return tuple(names)
