"""The Makefile's variables (variables.mk) and targets, read for `make help`, for the check that
refuses an unknown command-line variable, and for the docs' tests.

    python3 local/make_variables.py help              # what `make help` prints
    python3 local/make_variables.py unknown DATSET    # the message for a misspelt variable

Standard library only: `make help` and the check run before `make setup` has made .venv.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIABLES_FILE = ROOT / "variables.mk"
MAKEFILE = ROOT / "Makefile"

ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*\?=\s*(.*?)\s*$")
DOCUMENTED_DEFAULT = re.compile(r"\s*\[default: (.*)\]$")
TARGET = re.compile(r"^([a-z0-9-]+):.*?## (.*)$")


@dataclass(frozen=True)
class Variable:
    name: str
    help: str  # without the [default: ...] note
    default: str  # the Makefile's value, else the [default: ...] note, else ""
    group: str


def read_variables(path: Path = VARIABLES_FILE) -> list[Variable]:
    """Every variable of variables.mk; a variable without its `## help` line is an error."""
    variables, group, pending = [], "", None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("##@ "):
            group = line[4:].strip()
        elif line.startswith("## "):
            pending = line[3:].strip()
        elif match := ASSIGNMENT.match(line):
            if pending is None:
                raise ValueError(f"{path}:{number}: {match[1]} has no '## help' line above it")
            note = DOCUMENTED_DEFAULT.search(pending)
            help_text = pending[: note.start()] if note else pending
            default = match[2] or (note[1] if note else "")
            variables.append(Variable(match[1], help_text, default, group))
            pending = None
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{path}:{number}: expected '## help' or 'NAME ?= value': {line!r}")
    return variables


def read_targets(path: Path = MAKEFILE) -> list[tuple[str, str]]:
    """(target, help) of every Makefile target with a `## help` comment, in file order."""
    return [
        (match[1], match[2])
        for line in path.read_text().splitlines()
        if (match := TARGET.match(line))
    ]


def closest(name: str, known: list[str]) -> str:
    """The known name most like `name` (case aside): what a typo most likely meant."""
    return max(known, key=lambda k: difflib.SequenceMatcher(None, name.upper(), k).ratio())


def unknown_message(names: list[str], known: list[str]) -> str:
    """One line (make's $(error) prints one): each unknown name and the closest known one."""
    guesses = "; ".join(f"{name} (did you mean {closest(name, known)}?)" for name in names)
    plural = "s" if len(names) > 1 else ""
    return (
        f"unknown variable{plural} on the command line: {guesses}. `make help` lists the "
        "variables and their defaults (variables.mk)"
    )


def help_text() -> str:
    lines = ["Targets:"]
    lines += [f"  make {target:<15} {text}" for target, text in read_targets()]
    lines += ["", "Variables (make TARGET NAME=value; the default in brackets):"]
    group = None
    for variable in read_variables():
        if variable.group != group:
            group = variable.group
            lines.append(f" {group}")
        default = f" [{variable.default}]" if variable.default else ""
        lines.append(f"  {variable.name:<18} {variable.help}{default}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["help"]:
        print(help_text())
        return 0
    if argv[:1] == ["unknown"] and len(argv) > 1:
        print(unknown_message(argv[1:], [v.name for v in read_variables()]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
