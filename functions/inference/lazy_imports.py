"""Standard library modules the function never uses, imported only if something uses them.

Powertools' `event_handler` package imports every resolver it has in its `__init__`, and no
import path avoids that: AppSync's resolvers `import asyncio` at module level (they use it
only inside their methods), and asyncio pulls in ssl, socket and concurrent.futures: about
25 ms of every cold start on the bench's Lambda-like path, for a module this function never
calls. `defer` puts a stand-in module in sys.modules under the name: `import asyncio` binds the
stand-in, and its first attribute lookup (PEP 562's module `__getattr__`) imports the real
module and hands its attributes out, so anything that does use it (a resolver's
`asyncio.run`, `from asyncio import ...`, `import asyncio.subprocess`) gets the real module,
unchanged. (The standard library's LazyLoader does not help here: the next `import asyncio`
statement reads the module's `__spec__`, which makes it load at once.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

DEFERRED = ("asyncio",)


def defer(name: str) -> None:
    """Make `import name` cheap in this process until the module is used (nothing to do when it
    is already imported or not installed)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = types.ModuleType(name, f"{name}, imported on first use (lazy_imports.py)")
    stand_in.__spec__ = spec

    def load(attribute: str):
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]  # the real module takes its place for every later import
        return getattr(importlib.import_module(name), attribute)

    stand_in.__getattr__ = load
    sys.modules[name] = stand_in


for _name in DEFERRED:
    defer(_name)
