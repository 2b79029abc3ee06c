"""The documentation site in a real headless Chromium (Debian's chromium, driven by Playwright):
every page, served over HTTP on loopback as `make docs-serve` serves it, renders its heading and
makes no request outside the site's own origin (no web font, CDN script or stylesheet)."""

from __future__ import annotations

import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from local.processes import free_port
from tests.integration.test_page_browser import CHROMIUM_ARGS, chromium_or_why_not
from tests.sam_support import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site (strict), served by the standard library's HTTP server on loopback."""
    out = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=out,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(base + "/index.html", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.1)
        yield base, sorted(p.name for p in out.glob("*.html"))
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_every_page_renders_and_requests_only_its_own_origin(site):
    from playwright.sync_api import sync_playwright

    base, pages = site
    origin = urlsplit(base).netloc
    assert len(pages) >= 16
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_or_why_not(), args=CHROMIUM_ARGS
        )
        try:
            for name in pages:
                context = browser.new_context()
                seen: list[str] = []
                context.on("request", lambda request, seen=seen: seen.append(request.url))
                tab = context.new_page()
                tab.goto(f"{base}/{name}", wait_until="networkidle")
                if name != "404.html":
                    assert tab.locator("article h1").first.inner_text().strip(), name
                outside = [
                    url
                    for url in seen
                    if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != origin
                ]
                assert outside == [], name
                assert any(url.endswith(".js") for url in seen), name  # the theme's own scripts
                context.close()
        finally:
            browser.close()
