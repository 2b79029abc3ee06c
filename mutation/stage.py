"""The tree mutmut runs in (.mutation/): the checkout's files, with the mutated modules laid out
and rewritten so that mutmut 3 sees what the tests use.

Two things mutmut 3 cannot do on the checkout as it is:
- It names a module by its file's path (functions/inference/router.py is
  `functions.inference.router`) and switches a mutant on only where the running function's
  `__module__` has that name; the function's tests import `router`, as Lambda does. In the
  staged tree the function's modules (FUNCTION_MODULES) are copies at the root, where
  pyproject's pythonpath (".", first) finds them before functions/inference/.
- It leaves out every function with a decorator other than a lone @staticmethod or
  @classmethod (@property, functools.cached_property, functools.lru_cache), so a property's
  body is never mutated. The staged copy defines such a function undecorated and applies the
  decorators by assignment right after it (`name = property(name)`), which mutmut mutates.
  Caches are dropped there (cached_property becomes property, lru_cache goes): mutmut forks
  each mutant from the process that ran the clean tests, so a cached value would outlive the
  fork and hide the mutant. What is cached is pure, so only speed changes.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"
# Mutated in place (their import name is their path): mlcore's modules.
PACKAGES = ("mlcore",)
# The function's pure modules, imported by the function's tests as top-level modules.
FUNCTION_DIR = "functions/inference"
FUNCTION_MODULES = ("router.py", "canary.py")

KEPT = {"staticmethod", "classmethod"}  # the decorators mutmut handles itself
CACHES = {"cached_property": "property", "lru_cache": None}  # None: dropped


def _wrapper(decorator: ast.expr) -> str | None:
    """The callable a decorator applies, as source; caches replaced (None: nothing)."""
    called = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = ast.unparse(called).rpartition(".")[2]
    if name in CACHES:
        return CACHES[name]
    return ast.unparse(decorator)


def undecorate(source: str) -> str:
    """`source` with every decorated function (other than a lone @staticmethod or
    @classmethod) defined bare and decorated by an assignment right after it, caches dropped;
    every other line as it is. Decorators must stand on lines of their own."""
    lines = source.splitlines(keepends=True)
    edits = []  # (line index, lines removed there, lines inserted there)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.decorator_list:
            continue
        decorators = node.decorator_list
        if len(decorators) == 1 and ast.unparse(decorators[0]) in KEPT:
            continue
        wrapped = node.name
        for decorator in reversed(decorators):
            wrapper = _wrapper(decorator)
            if wrapper is not None:
                wrapped = f"{wrapper}({wrapped})"
        if wrapped != node.name:
            indent = lines[node.lineno - 1][: node.col_offset]
            edits.append((node.end_lineno, 0, [f"{indent}{node.name} = {wrapped}\n"]))
        first = decorators[0].lineno - 1
        edits.append((first, node.lineno - 1 - first, []))
    for index, removed, inserted in sorted(edits, key=lambda edit: edit[0], reverse=True):
        lines[index : index + removed] = inserted
    return "".join(lines)


def _tracked_files() -> list[str]:
    """The checkout's files (committed or not, as they are now), without what git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [path for path in listed.split("\0") if path and (ROOT / path).is_file()]


def stage(target: Path = STAGE, keep_results: bool = False) -> Path:
    """Lay out `target` anew: every file of the checkout, the mutated modules undecorated, the
    function's modules also at the root. keep_results: mutmut's results (target/mutants) stay,
    so that it tests again only what changed. Returns `target`."""
    if target.exists():
        for entry in target.iterdir():
            if keep_results and entry.name == "mutants":
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for path in _tracked_files():
        if path.startswith(".mutation/"):
            continue
        source, copy = ROOT / path, target / path
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".py") and path.split("/")[0] in PACKAGES:
            copy.write_text(undecorate(source.read_text()))
        else:
            shutil.copy2(source, copy)
    for module in FUNCTION_MODULES:
        (target / module).write_text(undecorate((ROOT / FUNCTION_DIR / module).read_text()))
    return target
