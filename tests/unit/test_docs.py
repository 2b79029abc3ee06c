"""The documentation site (docs/, mkdocs.yml) and the README held to the code.

The reference pages copy facts from the code; each such fact is compared here with its source:
template parameters and their defaults, stack outputs, every error code and its status, every
route, make targets and variables, every module of the layout page, the deployer's policy
against the resource types the template creates. The site itself: it builds strictly (and a
broken link does fail it), and its HTML asks the internet for no script, stylesheet, font or
image (tests/integration/test_docs_browser.py checks the same in a real browser).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.sam_support import ROOT, load_template, translate

DOCS = ROOT / "docs"
MKDOCS = [sys.executable, "-m", "mkdocs"]
MAKEFILE_TARGET = re.compile(r"^([a-z0-9-]+):.*?## ")


def page(name: str) -> str:
    return (DOCS / name).read_text()


def section(text: str, heading: str) -> str:
    """The text under `## heading` up to the next heading of that level or higher."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match[1]


def table(text: str) -> list[list[str]]:
    """The rows of every Markdown table in text (header and rule lines left out), as cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            # cells split on the pipes that are not escaped (`ENV=dev\\|prod` is one cell)
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    headers = ("parameter", "variable", "status", "route", "path")
    return [row for row in rows if row[0] not in headers]


def code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def plain(cell: str) -> str:
    return cell.replace("`", "").strip()


# ------------------------------------------------------------------ configuration


def test_every_template_parameter_is_on_the_configuration_page_with_its_default():
    parameters = load_template()["Parameters"]
    rows = table(section(page("configuration.md"), "Template parameters"))
    documented = {code(row[0])[0]: plain(row[1]) for row in rows}
    assert list(documented) == list(parameters), "the template's parameters, in its order"
    for name, spec in parameters.items():
        default = str(spec.get("Default", ""))
        assert documented[name] == (default or '""'), name


def test_every_stack_output_is_named_on_the_configuration_page():
    outputs = set(load_template()["Outputs"])
    named = set(code(section(page("configuration.md"), "Stack outputs")))
    assert outputs <= named, outputs - named


def make_variables() -> dict[str, str]:
    """Every make variable a user may set, with its default: variables.mk, the one list
    (read by local/make_variables.py for make help and the unknown-variable check)."""
    from local.make_variables import read_variables

    return {v.name: v.default for v in read_variables()}


def test_every_make_variable_is_on_the_configuration_page_with_its_default():
    variables = make_variables()
    rows = table(section(page("configuration.md"), "Make variables"))
    documented = {code(row[0])[0]: plain(row[1]) for row in rows}
    assert sorted(documented) == sorted(variables)
    for name, default in variables.items():
        if default:
            assert documented[name] == default, name


def test_every_make_target_is_on_the_configuration_page():
    targets = {
        match[1]
        for line in (ROOT / "Makefile").read_text().splitlines()
        if (match := MAKEFILE_TARGET.match(line))
    }
    listed = set()
    for row in table(section(page("configuration.md"), "Make targets")):
        listed |= set(code(row[1]))
    assert listed == targets


def test_every_variable_of_the_functions_environment_is_one_they_read():
    named = {n for n in code(section(page("configuration.md"), "The functions' environment"))}
    variables = {n for n in named if re.fullmatch(r"[A-Z][A-Z0-9_]+", n) and n != "MODEL_"}
    sources = (ROOT / "template.yaml").read_text() + "".join(
        p.read_text() for p in [*ROOT.glob("functions/*/*.py"), *ROOT.glob("mlcore/*.py")]
    )
    assert len(variables) > 20
    assert {v for v in variables if v not in sources} == set()


# ------------------------------------------------------------------ HTTP API


def gateway_codes() -> dict[str, set[str]]:
    """code -> statuses of the API Gateway responses the template defines (DEFAULT_4XX: 4xx),
    and of the web ACL's custom responses (the status its blocking rules answer with)."""
    resources = load_template()["Resources"]
    found: dict[str, set[str]] = {}
    for acl in (r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACL"):
        text = json.dumps(acl)
        statuses = {str(code) for code in re.findall(r'"ResponseCode": (\d+)', text)}
        for name in re.findall(r'\\"code\\": \\"([A-Z_]+)\\"', text):
            found.setdefault(name, set()).update(statuses)
    for kind, response in resources["InferenceApi"]["Properties"]["GatewayResponses"].items():
        status = response.get("StatusCode", {"DEFAULT_4XX": "4xx", "DEFAULT_5XX": "5xx"}.get(kind))
        statuses = status["Fn::If"][1:] if isinstance(status, dict) else [status]
        body = response["ResponseTemplates"]["application/json"]
        bodies = body["Fn::If"][1:] if isinstance(body, dict) else [body] * len(statuses)
        for code_status, text in zip(statuses, bodies, strict=True):
            for name in re.findall(r'"code": "([A-Z_]+)"', text):
                found.setdefault(name, set()).add(code_status)
    return found


def test_the_error_table_has_every_code_with_its_status():
    sys.path.insert(0, str(ROOT / "functions" / "inference"))
    try:
        from errors import STATUS_BY_CODE
    finally:
        sys.path.remove(str(ROOT / "functions" / "inference"))
    expected = {code: {str(status)} for code, status in STATUS_BY_CODE.items()}
    for code_name, statuses in gateway_codes().items():
        expected.setdefault(code_name, set()).update(statuses)
    rows = table(section(page("api.md"), "Errors"))
    documented = {code(row[1])[0]: set(row[0].split(", ")) for row in rows}
    assert "INVALID_REQUEST_BODY" in documented
    assert documented == expected


def test_the_route_table_has_every_route_of_the_openapi_document():
    openapi = json.loads((ROOT / "functions" / "inference" / "openapi.json").read_text())
    expected = {
        (method.upper(), path) for path, methods in openapi["paths"].items() for method in methods
    }
    documented = set()
    for row in table(section(page("api.md"), "Routes")):
        method, template = code(row[0])[0].split(" ", 1)
        optional = re.search(r"\[([^\]]+)\]", template)
        forms = [template]
        if optional:
            forms = [template.replace(optional[0], ""), template.replace(optional[0], optional[1])]
        documented |= {(method, form) for form in forms}
    assert documented == expected


# ------------------------------------------------------------------ layout


def test_the_layout_page_names_every_module_in_its_folders_row():
    rows = {code(row[0])[0]: row[1] for row in table(page("layout.md"))}
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    missing = []
    for path in map(Path, listed):
        if path.name == "__init__.py" or path.parts[:2] in (
            ("tests", "unit"),
            ("tests", "integration"),
        ):
            continue
        folder = f"{path.parent.as_posix()}/"
        if path.stem not in code(rows.get(folder, "")):
            missing.append(path.as_posix())
    assert missing == []


# ------------------------------------------------------------------ deploy guide


def test_the_deployers_policy_covers_every_service_the_template_creates_resources_with():
    policy = json.loads((DOCS / "deployer-policy.json").read_text())
    actions = [
        action
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    ]
    granted = {action.split(":")[0] for action in actions}
    needed = set()
    for overrides in (
        {},
        {"SnapStart": "true", "ReservedConcurrency": "50", "AuditTrail": "true"},
        {"AlarmEmail": "ops@example.com", "CaptureSampleRate": "0.1", "ApiAuthMode": "IAM"},
    ):
        for resource in translate(overrides)["Resources"].values():
            service = resource["Type"].split("::")[1].lower()
            # IAM names HTTP APIs' actions apigateway:*, as REST APIs' (no apigatewayv2 prefix)
            needed.add({"apigatewayv2": "apigateway"}.get(service, service))
    assert needed <= granted, needed - granted
    assert "sts:AssumeRole" in actions  # publishing goes through PublisherRole
    assert '--8<-- "docs/deployer-policy.json"' in page("deploy.md")


def test_the_dev_environment_locks_versions_for_a_short_time():
    import tomllib

    with (ROOT / "samconfig.toml").open("rb") as f:
        dev = tomllib.load(f)["dev"]["deploy"]["parameters"]["parameter_overrides"]
    assert "ObjectLockRetentionDays=1" in dev
    assert "StageName=dev" in dev and "execute-api.REGION.amazonaws.com/dev" in page("deploy.md")


# ------------------------------------------------------------------ README


def test_the_readme_is_a_short_door_to_every_page():
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) <= 150
    assert [n for n, line in enumerate(lines, 1) if len(line) > 120] == []
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = set()
    for entry in nav:
        for value in entry.values():
            pages |= {next(iter(v.values())) for v in value} if isinstance(value, list) else set()
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)\)", readme))
    assert pages - {"benchmarks.md"} <= linked
    for name in linked:
        assert (DOCS / name).is_file(), name
    assert "curl" in readme and "images" in readme and "examples/digit.json" in readme


# ------------------------------------------------------------------ the site


class ExternalReferences(HTMLParser):
    """Every URL a page makes the browser fetch by itself (scripts, stylesheets, fonts, icons,
    images, frames), not the links a reader may follow."""

    FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "link": "href"}

    def __init__(self):
        super().__init__()
        self.fetched: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.FETCHED and attrs.get(self.FETCHED[tag]):
            if tag != "link" or attrs.get("rel") not in ("canonical", "alternate", "next", "prev"):
                self.fetched.append(attrs[self.FETCHED[tag]])


def external(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.I))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [*MKDOCS, "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert build.returncode == 0, build.stderr
    return out


def test_every_page_is_built_and_fetches_nothing_from_the_internet(site):
    pages = sorted(site.glob("*.html"))
    assert {p.stem for p in pages} >= {p.stem for p in DOCS.glob("*.md")}
    for html in pages:
        parser = ExternalReferences()
        parser.feed(html.read_text())
        assert parser.fetched, html.name
        assert [url for url in parser.fetched if external(url)] == [], html.name
        inline_css = re.findall(r"url\(\s*['\"]?([^'\")]+)", html.read_text())
        assert [url for url in inline_css if external(url)] == [], html.name
    for css in site.glob("assets/**/*.css"):
        imported = re.findall(r"(?:@import|url\()\s*['\"]?([^'\")\s]+)", css.read_text())
        assert [url for url in imported if external(url)] == [], css.name


def test_the_benchmarks_page_is_bench_readme_itself(site):
    text = (site / "benchmarks.html").read_text()
    first_heading = (ROOT / "bench" / "README.md").read_text().splitlines()[0].lstrip("# ")
    assert first_heading.split(":")[0] in text


def test_a_broken_link_or_a_page_outside_the_navigation_fails_the_build(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "bench").mkdir()
    shutil.copy(ROOT / "bench" / "README.md", tmp_path / "bench" / "README.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    env = {"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}

    def build():
        return subprocess.run(
            [*MKDOCS, "build", "--strict", "--site-dir", str(tmp_path / "site")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
        )

    assert build().returncode == 0
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the navigation\n")
    assert build().returncode != 0
    (tmp_path / "docs" / "orphan.md").unlink()
    with (tmp_path / "docs" / "api.md").open("a") as f:
        f.write("\nSee [nowhere](deploy.md#no-such-section).\n")
    failed = build()
    assert failed.returncode != 0 and "no-such-section" in failed.stderr
