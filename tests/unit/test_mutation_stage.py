"""mutation/stage.py: the staged tree mutmut runs in shows it what the tests import and what
properties and caches wrap (make mutation; mutation/SUMMARY.md)."""

import tomllib

from mutation.stage import FUNCTION_DIR, FUNCTION_MODULES, PACKAGES, ROOT, undecorate

SOURCE = """import functools


class Box:
    def __init__(self, n):
        self.n = n

    @property
    def double(self):
        return 2 * self.n

    @functools.cached_property  # a comment that goes with the decorator
    def square(self):
        return self.n * self.n

    @staticmethod
    def one():
        return 1

    @classmethod
    def of(cls, n):
        return cls(n)


@functools.lru_cache(maxsize=8)
def triple(n):
    return 3 * n
"""


def test_decorated_functions_are_defined_bare_then_wrapped_and_caches_dropped():
    staged = undecorate(SOURCE)
    assert "@property" not in staged and "cached_property" not in staged
    assert "    double = property(double)\n" in staged
    assert "    square = property(square)\n" in staged  # a cache would outlive mutmut's fork
    assert "lru_cache" not in staged and "\ndef triple(n):\n    return 3 * n\n" in staged
    assert "    @staticmethod\n    def one" in staged and "    @classmethod\n    def of" in staged
    namespace = {}
    exec(compile(staged, "staged", "exec"), namespace)
    box = namespace["Box"].of(4)
    assert (box.double, box.square, box.one(), namespace["triple"](5)) == (8, 16, 1, 15)
    assert undecorate(staged) == staged  # nothing left to do


def test_the_staged_modules_are_the_ones_mutmut_is_told_to_mutate():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["mutmut"]["source_paths"] == [f"{p}/" for p in PACKAGES] + list(FUNCTION_MODULES)
    for module in FUNCTION_MODULES:
        assert (ROOT / FUNCTION_DIR / module).is_file()
    # the staged root comes first on the tests' path: `import router` finds the mutated copy
    assert tool["pytest"]["ini_options"]["pythonpath"][0] == "."
