"""`sam build` of template.yaml, as a user runs it: what it produces is what Lambda gets.

One real `sam build` (no Docker: makefile build methods, cross-platform wheels) into a
temporary directory, then checks on its output: the size budget, the function package, the
layer's platform, the trim; and the template passes `sam validate --lint` and cfn-lint.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.sam_support import (
    FUNCTION_DIR,
    LAMBDA_RUNTIME_PACKAGES,
    LAYER_DIR,
    MLCORE_DIR,
    OTEL_LAYER_PACKAGES,
    ROOT,
    TEMPLATE,
    normalize,
    pinned_requirements,
    tree_bytes,
    trim_rules,
    zipped_bytes,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
MONITOR_DIR = ROOT / "functions" / "monitor"
# Lambda allows 250 MB (262,144,000 bytes) unzipped for a function and all its layers; this
# project keeps itself to 100 MB (decimal, the stricter reading) so a bigger model runtime or
# a second layer still fits.
BUDGET_BYTES = 100 * 1000 * 1000
EM_AARCH64 = 183  # ELF e_machine


def python_found(version: str) -> bool:
    """Whether compile_bytecode.sh finds an interpreter of that version on this machine."""
    with tempfile.TemporaryDirectory() as empty:
        probe = subprocess.run(
            ["bash", str(LAYER_DIR / "compile_bytecode.sh"), empty, version],
            capture_output=True,
            text=True,
        )
    return "warning: no python" not in probe.stderr


def runtime_stdlib() -> frozenset[str]:
    """The standard library's module names of the runtime's Python (.venv-function's 3.13, as
    Lambda's python3.13), with this Python's: private ones differ between versions (3.13's
    _sha2 was 3.11's _sha256)."""
    names = set(sys.stdlib_module_names)
    python = ROOT / ".venv-function" / "bin" / "python"
    if python.exists():
        code = "import sys; print(' '.join(sys.stdlib_module_names))"
        names |= set(
            subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.split()
        )
    return frozenset(names)


def tool_env() -> dict[str, str]:
    """sam, pip and cfn-lint from this virtualenv; no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["SAM_CLI_TELEMETRY"] = "0"
    env["PYTHON"] = sys.executable  # the layer Makefile's pip
    return env


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory) -> Path:
    """Runs `sam build` once (from a scratch directory, so nothing lands in the work tree)."""
    work = tmp_path_factory.mktemp("sam-build")
    build_dir = work / "build"
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(BIN / "sam"),
            "build",
            "--template-file",
            str(TEMPLATE),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(work / "cache"),
        ],
        cwd=work,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    print(f"\nsam build: {elapsed:.1f} s")
    output = result.stdout + result.stderr
    print("\n".join(line for line in output.splitlines() if line.startswith("trim:")))
    return build_dir


@pytest.fixture(scope="session")
def layer(sam_build) -> Path:
    return sam_build / "RuntimeLayer" / "python"


@pytest.fixture(scope="session")
def function(sam_build) -> Path:
    return sam_build / "InferenceFunction"


@pytest.fixture(scope="session")
def monitor(sam_build) -> Path:
    return sam_build / "MonitorFunction"


def test_function_and_layer_fit_the_budget(sam_build, layer, function):
    layer_root = layer.parent
    unzipped = tree_bytes(function) + tree_bytes(layer_root)
    zipped = zipped_bytes(function) + zipped_bytes(layer_root)
    print(
        f"\nunzipped: function {tree_bytes(function) / MIB:.2f} MiB + layer "
        f"{tree_bytes(layer_root) / MIB:.2f} MiB = {unzipped / MIB:.2f} MiB; "
        f"zipped: {zipped / MIB:.2f} MiB ({unzipped / 1e6:.1f} MB unzipped)"
    )
    assert unzipped <= BUDGET_BYTES, (
        f"{unzipped / 1e6:.1f} MB unzipped, budget {BUDGET_BYTES / 1e6:.0f} MB"
    )
    assert zipped <= 50 * MIB  # Lambda's limit for a direct zip upload


def files_in(built: Path) -> list[str]:
    return sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())


def modules_with_bytecode(code_dir: Path) -> list[str]:
    """What a function's package must hold: its modules, mlcore's, and (where python3.13 is
    here to compile them) the bytecode of each."""
    sources = [p.name for p in code_dir.glob("*.py")]
    sources += [f"mlcore/{p.name}" for p in MLCORE_DIR.glob("*.py")]
    if python_found("3.13"):
        sources += [
            f"{Path(name).parent}/__pycache__/{Path(name).stem}.cpython-313.pyc".lstrip("./")
            for name in sources
        ]
    return sources


def test_function_package_is_only_the_python_modules_and_their_bytecode(function):
    """Its own modules and the shared mlcore package, each with its bytecode, the API's
    OpenAPI document and the page it serves at GET /."""
    sources = modules_with_bytecode(FUNCTION_DIR)
    assert "app.py" in sources and "mlcore/predictor.py" in sources
    assert files_in(function) == sorted([*sources, "openapi.json", "page.html"])


def test_monitor_package_is_only_its_modules_and_mlcore(monitor):
    """The drift monitor: its modules and mlcore (with bytecode), on the same layer."""
    sources = modules_with_bytecode(MONITOR_DIR)
    assert "monitor.py" in sources and "drift.py" in sources
    assert files_in(monitor) == sorted(sources)
    assert tree_bytes(monitor) < 1 * MIB


def test_no_tensorflow_anywhere_in_the_build(sam_build):
    offenders = [
        p
        for p in sam_build.rglob("*")
        if p.name.lower().startswith(("tensorflow", "tflite_runtime", "tf_keras", "keras"))
    ]
    assert not offenders, offenders[:5]


def test_layer_holds_exactly_the_pinned_packages(layer):
    installed = {}
    for dist_info in layer.glob("*.dist-info"):
        name, version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)
        installed[normalize(name)] = version
    assert installed == pinned_requirements()
    # the Lambda runtime's own SDK is not shipped again
    assert not {"boto3", "botocore", "s3transfer", "urllib3"} & set(installed)
    for package in ("ai_edge_litert", "numpy", "PIL", "aws_lambda_powertools", "aws_xray_sdk"):
        assert (layer / package / "__init__.py").is_file(), package


def test_layer_is_built_for_lambda_arm64_python313(layer):
    platform_specific = 0
    for wheel in layer.glob("*.dist-info/WHEEL"):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        assert tags, wheel
        if all(t.endswith("-any") for t in tags):
            continue
        platform_specific += 1
        assert any("aarch64" in t for t in tags), (wheel.parent.name, tags)
        assert any(
            t.startswith(("cp313-cp313-", "cp310-abi3-", "cp311-abi3-", "cp312-abi3-"))
            for t in tags
        ), (
            wheel.parent.name,
            tags,
        )
    assert platform_specific >= 4  # ai-edge-litert, numpy, pillow, wrapt
    shared_objects = [p for p in layer.rglob("*.so*") if p.is_file()]
    assert len(shared_objects) > 10
    for so in shared_objects:
        header = so.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", so
        assert int.from_bytes(header[18:20], "little") == EM_AARCH64, f"{so} is not aarch64"
    extensions = [p.name for p in layer.rglob("*.cpython-*.so")]
    assert extensions and all(".cpython-313-aarch64-linux-gnu.so" in n for n in extensions)
    assert (layer / "ai_edge_litert" / "_pywrap_litert_interpreter_wrapper.so").is_file()
    assert (layer / "ai_edge_litert" / "libpywrap_litert_common.so").is_file()


def test_trimmed_files_are_absent(layer):
    for rule in trim_rules():
        matches = [p for p in layer.glob(rule.pattern) if p.is_dir() == rule.dirs_only]
        assert not matches, f"trim rule {rule.pattern} left {matches[:3]}"
    for gone in (
        "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
        "ai_edge_litert/tools",
        "ai_edge_litert/aot",
        "numpy/_core/tests",
        "bin",
    ):
        assert not (layer / gone).exists(), gone
    assert not list(layer.rglob("*.pyi"))


def test_layer_ships_bytecode_for_the_runtime_python(layer):
    """/opt is read-only on Lambda: without .pyc files for python3.13 in the layer, every cold
    start compiles every module from source (+360 ms, bench/README.md)."""
    compiled = {
        p.parent.parent / (p.name.split(".")[0] + ".py")
        for p in layer.rglob("__pycache__/*.cpython-313.pyc")
    }
    if not compiled and not python_found("3.13"):
        pytest.skip("no python3.13 on this machine to compile with (compile_bytecode.sh)")
    missing = [str(p.relative_to(layer)) for p in layer.rglob("*.py") if p not in compiled]
    assert not missing, f"{len(missing)} modules without python3.13 bytecode: {missing[:5]}"
    stray = [p.name for p in layer.rglob("*.pyc") if ".cpython-313." not in p.name]
    assert not stray, f"bytecode for another Python version: {stray[:5]}"


@pytest.mark.parametrize("code", [FUNCTION_DIR, MONITOR_DIR], ids=["inference", "monitor"])
def test_every_import_of_the_function_resolves_in_the_layer_or_the_runtime(layer, code):
    """A module the layer lacks would fail only in Lambda, at the first cold start."""
    local = {p.stem for p in code.glob("*.py")} | {MLCORE_DIR.name}
    layer_top = {p.name for p in layer.iterdir() if p.is_dir()} | {
        p.stem for p in layer.glob("*.py")
    }
    missing, stdlib = {}, runtime_stdlib()
    for module in [*code.glob("*.py"), *MLCORE_DIR.glob("*.py")]:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top == "__future__":
                    continue
                if top not in local | layer_top | LAMBDA_RUNTIME_PACKAGES | OTEL_LAYER_PACKAGES:
                    missing.setdefault(top, []).append(module.name)
    assert not missing, f"imported by the function, found nowhere in Lambda: {missing}"


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300
    )


def test_sam_validate_lint_passes():
    result = run_tool(str(BIN / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_passes_with_no_warnings():
    result = run_tool(str(BIN / "cfn-lint"), str(TEMPLATE))
    # cfn-lint exits non-zero for warnings (4) as well as errors (2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_checkov_finds_nothing_unjustified():
    """checkov (its own pinned environment, .venv-checkov, made by `make setup`), offline:
    no failed check; each skipped one carries its reason in the template and in the docs'
    testing page (docs/testing.md, "Template checks")."""
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    assert checkov.is_file(), "make setup creates .venv-checkov"
    result = run_tool(
        str(checkov),
        *("--file", str(TEMPLATE), "--framework", "cloudformation", "--skip-download"),
        *("--output", "json"),
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert result.returncode == 0 and summary["failed"] == 0, failed
    skipped = report["results"]["skipped_checks"]
    assert summary["skipped"] == len(skipped) > 0
    page = (ROOT / "docs" / "testing.md").read_text()
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"]) > 40, check["check_id"]
        assert check["check_id"] in page, f"{check['check_id']} is not listed in docs/testing.md"


@pytest.mark.slow
def test_checkov_finds_nothing_unjustified_in_what_cloudformation_deploys(tmp_path):
    """`make validate`'s second scan: checkov on the SAM-transformed template of each parameter
    set of local/transformed.py (the generated stage, roles and permissions, the conditions
    resolved), with the same skips and reasons as template.yaml's. Slow: about a minute of
    checkov."""
    from local.transformed import PARAMETER_SETS
    from local.transformed import main as write_transformed

    assert write_transformed(["--out", str(tmp_path)]) == 0
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    result = run_tool(
        str(checkov),
        *("--directory", str(tmp_path), "--framework", "cloudformation", "--skip-download"),
        *("--output", "json"),
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (c["file_path"], c["check_id"], c["resource"])
        for report in reports
        for c in report["results"]["failed_checks"]
    ]
    assert result.returncode == 0 and not failed, failed
    scanned = {c["file_path"] for r in reports for c in r["results"]["passed_checks"]}
    assert {f"/{name}.json" for name in PARAMETER_SETS} <= scanned
    page = (ROOT / "docs" / "testing.md").read_text()
    for report in reports:
        for check in report["results"]["skipped_checks"]:
            assert len(check["check_result"]["suppress_comment"]) > 40, check["check_id"]
            assert check["check_id"] in page, f"{check['check_id']} is not in docs/testing.md"
