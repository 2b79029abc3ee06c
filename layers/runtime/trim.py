"""Apply the layer's trim rules (trim.txt) to an installed layer directory.

Usage: python trim.py LAYER_PYTHON_DIR RULES_FILE

Standard library only: the Makefile runs it with whatever Python runs pip. Prints one
line per rule (files and bytes removed) and the layer's size before and after; exits 1
when a rule that is not marked optional (`?`) matches nothing, so that an upgrade which
renames or moves a file fails the build instead of silently shipping it again.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    pattern: str
    optional: bool
    dirs_only: bool


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        optional = line.startswith("?")
        pattern = line[1:].strip() if optional else line
        dirs_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if not pattern or pattern.startswith("/") or ".." in Path(pattern).parts:
            raise ValueError(
                f"bad trim rule {raw!r}: use a glob relative to the layer's python/ dir"
            )
        rules.append(Rule(pattern, optional, dirs_only))
    return rules


def tree_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under path (a file counts as itself); symlinks are not followed."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for p in path.rglob("*"):
        if p.is_symlink() or p.is_file():
            files += 1
            size += p.lstat().st_size
    return files, size


def apply(root: Path, rules: list[Rule]) -> tuple[list[tuple[Rule, int, int]], list[Rule]]:
    """Delete what each rule matches under root: per-rule (files, bytes), and unmatched rules."""
    report, unmatched = [], []
    for rule in rules:
        matches = sorted(
            {
                p
                for p in root.glob(rule.pattern)
                if (p.is_dir() and not p.is_symlink()) == rule.dirs_only
            },
            key=lambda p: len(p.parts),
        )
        files = size = 0
        for path in matches:
            if not path.exists() and not path.is_symlink():
                continue  # inside a directory this rule already removed
            n, b = tree_size(path)
            files, size = files + n, size + b
            if rule.dirs_only:
                shutil.rmtree(path)
            else:
                path.unlink()
        report.append((rule, files, size))
        if not matches and not rule.optional:
            unmatched.append(rule)
    return report, unmatched


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    root, rules_file = Path(argv[1]), Path(argv[2])
    if not root.is_dir():
        print(f"trim: {root} is not a directory", file=sys.stderr)
        return 2
    rules = parse_rules(rules_file.read_text(encoding="utf-8"))
    before = tree_size(root)
    report, unmatched = apply(root, rules)
    after = tree_size(root)
    mb = 1024 * 1024
    for rule, files, size in report:
        suffix = "/" if rule.dirs_only else ""
        print(f"trim: {rule.pattern + suffix:<45} {files:6d} files {size / mb:8.2f} MB")
    print(
        f"trim: {root}: {before[1] / mb:.2f} MB ({before[0]} files) -> "
        f"{after[1] / mb:.2f} MB ({after[0]} files)"
    )
    for rule in unmatched:
        print(
            f"trim: rule {rule.pattern!r} matched nothing: the installed packages changed; "
            f"update {rules_file.name} (prefix the rule with '?' if it may be absent)",
            file=sys.stderr,
        )
    return 1 if unmatched else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
