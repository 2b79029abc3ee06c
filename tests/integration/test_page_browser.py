"""The page at GET / in a real headless Chromium (Debian's chromium, driven by Playwright's
Python API), against the real local API and the fixture model on the loopback S3: what the
page shows is what POST /predict answers for the same bytes.

Chromium must be there where it can be: `make setup` installs it with apt. Missing where apt
or CI could have it, the tests fail and say so; they skip only on a machine without apt."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from tests.local_support import FIXTURE_DIR, local_api, publish_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Chromium as this machine runs it (root, closed network): no sandbox, and none of the
# background connections (updates, sync, safe browsing) that the network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A "7" in two mouse strokes on the 280x280 pad: the bar, then the stem.
SEVEN = [
    [(70, 60), (215, 60)],
    [(215, 60), (180, 130), (150, 195), (130, 245)],
]
LINE = re.compile(r"^(?P<label>\S+) (?P<percent>\d+\.\d)%$")


def chromium_or_why_not() -> str:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    why = f"no Chromium at {CHROMIUM} (make setup installs Debian's chromium with apt-get)"
    if shutil.which("apt-get") is None and not os.environ.get("CI"):
        pytest.skip(f"{why}; this machine has no apt-get to install it")
    pytest.fail(why)


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    with local_api(folder, publish_fixture(s3_server, folder)) as running:
        yield running


@pytest.fixture(scope="module")
def browser(api):
    """One headless Chromium for the module, started after the API and closed before it: the
    API's check that nothing it started is left running also sees Chromium's processes end."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_why_not()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A page in a fresh browser context, every request it makes recorded. The local API's
    certificate comes from its own CA, which Chromium does not know: its errors are ignored
    (the Python client below verifies that certificate on each call)."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 900, "height": 700}
        )
        self.page = self.context.new_page()
        self.requests: list = []
        self.page.on("request", lambda request: self.requests.append(request))
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # script errors and CSP refusals; an HTTP error status (logged too) is the tests' own
        self.page.on("console", lambda m: m.type == "error" and self.console_error(m.text))
        self.url = url

    def console_error(self, text: str) -> None:
        if not text.startswith("Failed to load resource: the server responded with a status"):
            self.errors.append(text)

    def open(self, url: str | None = None):
        """The page, once it has read the model it serves (its heading then names it)."""
        self.page.goto(url or self.url)
        self.page.wait_for_selector("#heading[data-model]", timeout=30_000)
        return self

    def draw(self, strokes) -> None:
        box = self.page.locator("#pad").bounding_box()
        scale = box["width"] / 280
        mouse = self.page.mouse
        for stroke in strokes:
            x, y = stroke[0]
            mouse.move(box["x"] + x * scale, box["y"] + y * scale)
            mouse.down()
            for x, y in stroke[1:]:
                mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
            mouse.up()

    def pad_png(self) -> str:
        """The pad's own PNG, base64 (what the page sends)."""
        url = self.page.evaluate("document.getElementById('pad').toDataURL('image/png')")
        return url.split(",", 1)[1]

    def answer(self, state: str = "done") -> str:
        self.page.wait_for_selector(f"#result[data-state={state}]", timeout=30_000)
        return self.page.inner_text("#result")

    def predict_bodies(self) -> list[dict]:
        return [r.post_data_json for r in self.requests if r.url.endswith("/predict")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, api):
    opened = Visit(browser, api.url + "/")
    yield opened
    opened.close()
    assert opened.errors == []  # no script error, nothing refused by the page's CSP


def predict(api, image: str, key: str | None = None) -> requests.Response:
    return requests.post(
        api.url + "/predict",
        json={"images": [image]},
        headers={"x-api-key": api.key if key is None else key},
        verify=api.ca,
        timeout=30,
    )


def shown(text: str) -> tuple[str, list[tuple[str, float]]]:
    """The page's answer as a person reads it: the class name on the first line, then one
    line "label NN.N%" for each of the top classes."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    top = [LINE.match(line) for line in lines[1:] if LINE.match(line)]
    return lines[0], [(m["label"], float(m["percent"])) for m in top]


def assert_shows(text: str, answer: dict) -> None:
    """The page shows exactly this answer of POST /predict."""
    (prediction,) = answer["predictions"]
    label, top = shown(text)
    assert label == prediction["label"]
    assert [name for name, _ in top] == [t["label"] for t in prediction["top"]]
    assert len(top) == 3
    for (_, percent), entry in zip(top, prediction["top"], strict=True):
        assert percent == pytest.approx(100 * entry["confidence"], abs=0.051)
    model = answer["model"]
    assert f"model {model['name']}, version {model['version']}" in text


def test_a_drawn_digit_gets_the_apis_answer(visit, api, tmp_path):
    visit.open()
    assert visit.page.input_value("#api-key") == api.key  # the local API filled it in
    blank = visit.pad_png()
    visit.draw(SEVEN)
    visit.page.click("#predict")
    text = visit.answer()
    visit.page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    print(f"\nscreenshot: {tmp_path / 'page.png'}\n{text}")

    png = visit.pad_png()
    assert visit.predict_bodies() == [{"images": [png]}]  # the canvas's PNG, as it is
    direct = predict(api, png)
    assert direct.status_code == 200, direct.text
    assert_shows(text, direct.json())
    assert shown(text)[0] == "7"  # and a clear 7 reads as one
    sent = [r for r in visit.requests if r.url.endswith("/predict")][0]
    assert sent.headers["x-api-key"] == api.key and sent.method == "POST"

    # nothing but this API's origin: the page, the model it serves, then /predict
    origin = urlsplit(api.url)
    for request in visit.requests:
        url = urlsplit(request.url)
        assert (url.scheme, url.netloc) == (origin.scheme, origin.netloc), request.url
    paths = [urlsplit(r.url).path for r in visit.requests]
    assert paths == ["/", "/health/deep", "/v1/models/mnist/metadata", "/predict"]  # key filled in
    # the heading and hint come from that model: a digit model asks for a digit
    assert visit.page.inner_text("#heading") == "Draw a digit, or upload a photo of one"
    hint = visit.page.inner_text("#hint")
    assert "Model mnist, version" in hint and "grey 28x28 pixels" in hint

    assert not visit.page.is_visible("#preview")  # no photo chosen
    visit.page.click("#clear")
    assert visit.page.get_attribute("#result", "data-state") is None
    assert visit.pad_png() == blank
    visit.page.click("#predict")  # nothing drawn: said on the page, nothing sent
    assert "draw something" in visit.answer("error")
    assert len(visit.predict_bodies()) == 1


def test_an_uploaded_photo_is_sent_as_it_is(visit, api, tmp_path):
    """A held-out test digit as people photograph one: dark ink on light paper, larger and
    off-centre, as a JPEG. The file's own bytes go to /predict."""
    from PIL import Image

    with np.load(FIXTURE_DIR / "digits.npz") as digits:
        digit, expected = digits["x"][3], str(digits["expected"][3])
    paper = Image.new("L", (300, 260), 235)
    paper.paste(Image.fromarray(255 - digit).resize((150, 150)), (100, 40))
    buffer = io.BytesIO()
    paper.convert("RGB").save(buffer, "JPEG", quality=90)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(buffer.getvalue())

    visit.open()
    assert not visit.page.is_visible("#preview")
    visit.page.set_input_files("#upload", str(photo))
    text = visit.answer()
    image = base64.b64encode(photo.read_bytes()).decode()
    assert visit.predict_bodies() == [{"images": [image]}]
    direct = predict(api, image)
    assert direct.status_code == 200, direct.text
    assert_shows(text, direct.json())
    assert shown(text)[0] == expected
    assert visit.page.is_visible("#preview")
    visit.page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)


def test_an_error_of_the_api_is_shown(visit, api, tmp_path):
    visit.open()
    visit.page.fill("#api-key", "not-the-key")
    visit.draw(SEVEN)
    visit.page.click("#predict")
    text = visit.answer("error")
    visit.page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    direct = predict(api, visit.pad_png(), key="not-the-key").json()
    assert text == f"403 {direct['code']}: {direct['error']}"
    assert direct["code"] == "FORBIDDEN"


@pytest.mark.parametrize("stage_url", ["/prod", "/prod/"])
def test_the_page_works_under_a_stage_prefix(visit, api, stage_url):
    """Behind API Gateway the page is https://ID.execute-api.REGION.amazonaws.com/prod (or
    .../prod/) and /predict is /prod/predict: the browser's requests to /prod/... are routed
    to the local API's own paths, as the stage strips them; anything else is refused."""
    other: list[str] = []

    routes = ("/predict", "/health/deep", "/v1/models/mnist/metadata")

    def gateway(route):
        path = urlsplit(route.request.url).path
        if path in ("/prod", "/prod/"):
            route.fulfill(response=route.fetch(url=api.url + "/"))
        elif path.removeprefix("/prod") in routes:
            route.fulfill(response=route.fetch(url=api.url + path.removeprefix("/prod")))
        else:
            other.append(route.request.url)
            route.abort()

    visit.page.route("**/*", gateway)
    visit.open(api.url + stage_url)
    visit.draw(SEVEN)
    visit.page.click("#predict")
    text = visit.answer()
    assert other == []
    assert [urlsplit(r.url).path for r in visit.requests] == [
        stage_url,
        "/prod/health/deep",
        "/prod/v1/models/mnist/metadata",
        "/prod/predict",
    ]
    assert_shows(text, predict(api, visit.pad_png()).json())


def test_the_heading_follows_another_model_and_waits_for_a_key(browser, s3_server, tmp_path):
    """A model of other classes and input kind (the fixture's network relabelled A..J, its
    images stretched): the page asks for a photo of one of them. Deployed, the key is typed in
    (the page has none at first): the heading follows once it is."""
    import json
    import shutil

    from tests.local_support import environ, s3_environment
    from training.publish import publish

    published = publish_fixture(s3_server, tmp_path / "digits")
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    manifest = manifest | {"name": "letters", "labels": list("ABCDEFGHIJ")}
    manifest["input"] = manifest["input"] | {"preprocessing": {"policy": "stretch"}}
    artifact = tmp_path / "letters" / str(manifest["version"])
    artifact.mkdir(parents=True)
    shutil.copy(FIXTURE_DIR / "model.tflite", artifact / "model.tflite")
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    with environ(s3_environment(s3_server)):
        publish(artifact, published["bucket"], "models")
    # one API serving both models (ModelNames "*"), letters the default
    serving = published | {"name": "letters"}
    with local_api(tmp_path, serving, overrides=("ModelNames=*",)) as letters:
        visit = Visit(browser, letters.url + "/")
        try:
            visit.open()
            heading = visit.page.inner_text("#heading")
            assert heading == "Upload a photo of one of: A, B, C, D, E, F, G, H, I, J, or draw one"
            assert "(stretched)" in visit.page.inner_text("#hint")
            assert visit.page.title().startswith("Upload a photo of one of: A, B")

        finally:
            visit.close()
        assert visit.errors == []

        # deployed, the page has no key until one is typed: the generic heading until then
        blank = Visit(browser, letters.url + "/")
        try:

            def without_key(route):
                response = route.fetch()
                body = response.text().replace(f' value="{letters.key}"', "")
                route.fulfill(response=response, body=body)

            blank.page.route(letters.url + "/", without_key)
            blank.page.goto(letters.url + "/")
            assert blank.page.input_value("#api-key") == ""
            assert blank.page.inner_text("#heading") == "Draw an image, or upload a photo"
            blank.page.fill("#api-key", letters.key)
            blank.page.dispatch_event("#api-key", "change")
            blank.page.wait_for_selector("#heading[data-model]", timeout=30_000)
            assert blank.page.inner_text("#heading").startswith("Upload a photo of one of: A")
            paths = [urlsplit(r.url).path for r in blank.requests]
            # the open health without a key; the deep one (it lists every model) after it
            assert paths == ["/", "/health", "/health/deep", "/v1/models/letters/metadata"]
        finally:
            blank.close()
        assert blank.errors == []

        # the menu lists the served models; choosing mnist changes the heading, and the
        # drawing goes to mnist (/predict's "model"), answered as POST /predict answers it
        chooser = Visit(browser, letters.url + "/")
        try:
            chooser.open()
            options = chooser.page.eval_on_selector_all("#model option", "o => o.map(x => x.value)")
            assert options == ["letters", "mnist"]
            assert chooser.page.input_value("#model") == "letters"
            chooser.page.select_option("#model", "mnist")
            chooser.page.wait_for_selector('#heading[data-model^="mnist/"]', timeout=30_000)
            assert chooser.page.inner_text("#heading").startswith("Draw a digit")
            chooser.draw(SEVEN)
            chooser.page.click("#predict")
            text = chooser.answer()
            (body,) = chooser.predict_bodies()
            assert body["model"] == "mnist"
            answer = requests.post(
                letters.url + "/predict",
                json=body,
                headers={"x-api-key": letters.key},
                verify=letters.ca,
                timeout=30,
            )
            assert_shows(text, answer.json())
        finally:
            chooser.close()
        assert chooser.errors == []
