"""docs/http-api.md states facts of the code: each is held to it here."""

from __future__ import annotations

import re

from tests.function_support import ROOT

DOC = (ROOT / "docs" / "http-api.md").read_text()


def error_table() -> dict[int, set[str]]:
    section = DOC.split("## Errors", 1)[1]
    rows = re.findall(r"^\| (\d{3}) \| (.+) \|$", section, re.MULTILINE)
    return {int(status): set(re.findall(r"`([A-Z_]+)`", codes)) for status, codes in rows}


def test_every_error_code_is_listed_under_its_status():
    from errors import STATUS_BY_CODE

    table = error_table()
    for code, status in STATUS_BY_CODE.items():
        assert code in table.get(status, set()), f"{code} ({status}) missing from docs/http-api.md"
    listed = set().union(*table.values())
    gateway = {"FORBIDDEN", "THROTTLED", "INVALID_REQUEST_BODY", "GATEWAY_TIMEOUT"}  # its own
    assert listed - set(STATUS_BY_CODE) == gateway


def test_every_route_is_in_the_routes_table():
    import app

    routes = DOC.split("## Routes", 1)[1].split("\n\n", 2)[1]
    for route in app.registered_routes():
        stem = re.sub(r"/(versions|labels)/\{\w+\}", "", route.openapi_path)
        stem = stem.replace("/ready", "").replace("/infer", "").replace("/metadata", "")
        stem = stem.replace(":predict", "")
        assert stem.split("{")[0] in routes, route.openapi_path
