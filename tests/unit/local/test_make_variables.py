"""The one list of make variables (variables.mk): `make help` shows each with its default, a
command-line variable not in it fails at once naming the closest one (environment variables do
not), and the defaults it states are the training job's own."""

import dataclasses
import os
import re
import subprocess

import pytest

from local.make_variables import MAKEFILE, closest, read_targets, read_variables
from training.config import ConvertConfig, TrainConfig

VARIABLES = {v.name: v for v in read_variables()}


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(MAKEFILE.parent), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_make_help_lists_every_target_and_every_variable_with_its_default():
    shown = make("help")
    assert shown.returncode == 0, shown.stderr
    for target, _ in read_targets():
        assert f"  make {target} " in shown.stdout
    for variable in VARIABLES.values():
        line = next(x for x in shown.stdout.splitlines() if x.startswith(f"  {variable.name} "))
        assert variable.help in line
        if variable.default:
            assert line.endswith(f"[{variable.default}]"), line
    assert "  BUCKET             the registry bucket [serverless-ml-models]" in shown.stdout


def test_a_misspelt_variable_fails_at_once_naming_the_closest_known_one(tmp_path):
    refused = make("train", f"DATSET={tmp_path}", "NAME=letters")
    assert refused.returncode == 2
    assert "DATSET (did you mean DATASET?)" in refused.stderr
    assert "make help" in refused.stderr
    assert not (MAKEFILE.parent / "artifacts" / "letters").exists()
    lowercase = make("-n", "train", "epochs=3")
    assert lowercase.returncode == 2 and "epochs (did you mean EPOCHS?)" in lowercase.stderr


def test_variables_from_the_environment_are_not_checked():
    assert make("-n", "help", env={"DATSET": "x", "SOMETHING_ELSE": "1"}).returncode == 0
    assert make("-n", "help", "EPOCHS=3", "FORCE=1").returncode == 0  # listed ones pass


def test_closest_is_by_likeness_case_aside():
    known = list(VARIABLES)
    assert closest("DATSET", known) == "DATASET"
    assert closest("max_minute", known) == "MAX_MINUTES"
    assert closest("EPOCH", known) == "EPOCHS"


def test_every_variable_the_makefile_uses_is_listed():
    """Nothing the Makefile reads from a user escapes the list (and the check)."""
    text = MAKEFILE.read_text()
    used = set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text)) | set(
        re.findall(r"=([A-Z][A-Z0-9_]*)\b", " ".join(re.findall(r"call flags,([^)]*)", text)))
    )
    # the Makefile's own (`NAME = ...` or `NAME := ...`: not a user's to set), and make's
    internal = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*:?=", text, re.M)) | {"MAKEFILE_LIST"}
    assert used - internal <= set(VARIABLES), sorted(used - internal - set(VARIABLES))


def flag_pairs() -> dict[str, str]:
    """VARIABLE -> the config field it sets, from the Makefile's `flags` calls (flag=VARIABLE)."""
    pairs = re.findall(r"([a-z][a-z-]*)=([A-Z][A-Z0-9_]*)", MAKEFILE.read_text())
    return {variable: flag.replace("-", "_") for flag, variable in pairs}


def documented_default(config_class, field: dataclasses.Field) -> str | None:
    """The default as variables.mk should state it (first, before any ';')."""
    resolved = {"epochs": "max_epochs", "patience": "stop_patience"}
    value = field.default
    if value is None and field.name in resolved:
        value = getattr(config_class(dataset="any/folder"), resolved[field.name])
    if value is None:
        return None
    if isinstance(value, bool):
        return "off" if not value else "on"
    return str(value)


@pytest.mark.parametrize("config_class", [TrainConfig, ConvertConfig])
def test_the_defaults_stated_are_the_training_jobs_own(config_class):
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    checked = 0
    for variable, name in flag_pairs().items():
        if name not in fields or variable not in VARIABLES:
            continue
        expected = documented_default(config_class, fields[name])
        if expected is None:
            continue
        stated = VARIABLES[variable].default.split(";")[0].strip()
        try:
            assert float(stated) == float(expected), variable
        except ValueError:
            assert stated == expected, variable
        checked += 1
    assert checked >= 6


def test_the_samples_own_limits_are_stated_too():
    from training.config import SAMPLE, SAMPLE_EPOCHS

    assert VARIABLES["EPOCHS"].default.endswith(f"; {SAMPLE_EPOCHS} for {SAMPLE}")
