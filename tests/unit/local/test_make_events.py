"""events/*.json are written by `make events` (events/make_events.py) from template.yaml and the
fixture model: an event changed by hand, or a route changed without remaking them, fails here."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import EVENTS_DIR, FIXTURE_DIR


def load_make_events():
    spec = importlib.util.spec_from_file_location("make_events", EVENTS_DIR / "make_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_events_are_what_make_events_writes():
    make_events = load_make_events()
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    events, expected = make_events.build(
        make_events.pick_digit(7), "7", manifest["name"], manifest["version"]
    )
    stale = [
        name
        for name, event in events.items()
        if not (EVENTS_DIR / name).exists() or json.loads((EVENTS_DIR / name).read_text()) != event
    ]
    assert stale == [], f"run `make events`: {stale} differ from what it writes"
    assert json.loads((EVENTS_DIR / "expected.json").read_text()) == expected
