"""The trimmed runtime layer still runs the model.

The Lambda layer is aarch64/cp313 and cannot run here, so this builds the SAME layer Makefile
(same requirements, same trim.txt) for this machine's platform and Python, then runs the
committed fixture model in a fresh interpreter whose sys.path is only the standard library and
that layer (`python -I -S`: no site-packages, no PYTHONPATH), as Lambda's would be (plus the
runtime's own boto3, simulated where needed).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.sam_support import (
    FIXTURE_DIR,
    FUNCTION_DIR,
    LAMBDA_RUNTIME_PACKAGES,
    LAYER_DIR,
    trim_rules,
)

pytestmark = pytest.mark.integration

_TAGS = "manylinux_2_28_{0} manylinux_2_27_{0} manylinux_2_24_{0} manylinux2014_{0}"
HOST_PLATFORMS = {machine: _TAGS.format(machine) for machine in ("x86_64", "aarch64")}


@pytest.fixture(scope="module")
def host_layer(tmp_path_factory) -> Path:
    """layers/runtime built by its own Makefile for this machine; returns its python/ dir."""
    machine = platform.machine()
    if machine not in HOST_PLATFORMS:
        pytest.skip(f"no manylinux wheels for {machine}")
    artifacts = tmp_path_factory.mktemp("host-layer")
    build_for_this_host(
        LAYER_DIR / "Makefile",
        "build-RuntimeLayer",
        artifacts,
        f"PYTHON={sys.executable}",
        f"PLATFORMS={HOST_PLATFORMS[machine]}",
    )
    return artifacts / "python"


@pytest.fixture(scope="module")
def host_function(tmp_path_factory) -> Path:
    """The function package as its own Makefile builds it (its modules and mlcore)."""
    artifacts = tmp_path_factory.mktemp("host-function")
    build_for_this_host(FUNCTION_DIR / "Makefile", "build-InferenceFunction", artifacts)
    return artifacts


def build_for_this_host(makefile: Path, target: str, artifacts: Path, *variables: str) -> None:
    """What `sam build` runs for a makefile build method, for this machine's Python."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), target,
         f"ARTIFACTS_DIR={artifacts}",
         f"PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor}", *variables],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)


def run_isolated(script: str, *paths: Path, env: dict[str, str] | None = None) -> dict:
    """Run script in `python -I -S` with sys.path = stdlib + paths; returns its JSON on stdout."""
    prelude = textwrap.dedent(
        f"""
        import json, sys
        assert not any("site-packages" in p for p in sys.path), sys.path
        sys.path[:0] = {[str(p) for p in paths]!r}
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + FOREIGN_MODULES + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env or {"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


FOREIGN_MODULES = """
def foreign_modules(*allowed):
    import sys
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in sys.stdlib_module_names or not path:
            continue
        if not any(path.startswith(a) for a in allowed):
            out[name] = path
    return out
"""


def test_the_same_trim_was_applied(host_layer):
    for rule in trim_rules():
        matches = [p for p in host_layer.glob(rule.pattern) if p.is_dir() == rule.dirs_only]
        assert not matches, f"trim rule {rule.pattern} left {matches[:3]}"
    litert = host_layer / "ai_edge_litert"
    assert not (litert / "libLiteRtWebGpuAccelerator.so").exists()
    assert (litert / "interpreter.py").is_file()


def test_trimmed_layer_runs_the_fixture_model(host_layer):
    digits = np.load(FIXTURE_DIR / "digits.npz")
    script = f"""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    digits = np.load({str(FIXTURE_DIR / "digits.npz")!r})
    path = {str(FIXTURE_DIR / "model.tflite")!r}
    answers = []
    # from the file (large models, /tmp) and from memory (models up to 64 MiB)
    with open(path, "rb") as f:
        content = f.read()
    for interpreter in (Interpreter(model_path=path), Interpreter(model_content=content)):
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        scale, zero_point = inp["quantization"]
        x = digits["x"].astype(np.float32).reshape(-1, *inp["shape"][1:])
        q = np.clip(np.round(x / scale + zero_point), -128, 127).astype(inp["dtype"])
        interpreter.resize_tensor_input(inp["index"], q.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], q)
        interpreter.invoke()
        answers.append(interpreter.get_tensor(out["index"]).argmax(axis=1).tolist())
    assert answers[0] == answers[1]
    predictions = np.array(answers[0])
    print(json.dumps({{
        "predictions": predictions.tolist(),
        "dtype": str(inp["dtype"]),
        "foreign": foreign_modules({str(host_layer)!r}),
        "numpy": np.__file__,
    }}))
    """
    result = run_isolated(script, host_layer)
    assert result["foreign"] == {}, "modules imported from outside the layer and the stdlib"
    assert result["numpy"].startswith(str(host_layer))
    assert result["dtype"] == "<class 'numpy.int8'>"
    assert result["predictions"] == digits["expected"].tolist()
    assert len(result["predictions"]) == len(digits["y"]) > 0


def test_trimmed_layer_decodes_png_and_jpeg(host_layer):
    script = f"""
    import io
    import numpy as np
    from PIL import Image

    digit = np.load({str(FIXTURE_DIR / "digits.npz")!r})["x"][0]
    decoded = {{}}
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(digit).save(buffer, format=fmt, quality=95)
        image = Image.open(io.BytesIO(buffer.getvalue()), formats=[fmt]).convert("L")
        decoded[fmt] = float(np.abs(np.asarray(image, dtype=np.float32) - digit).mean())
    print(json.dumps({{"decoded": decoded, "foreign": foreign_modules({str(host_layer)!r})}}))
    """
    result = run_isolated(script, host_layer)
    assert result["foreign"] == {}
    assert result["decoded"]["PNG"] == 0.0  # lossless
    assert result["decoded"]["JPEG"] < 8.0  # lossy, close


def test_function_modules_import_with_only_the_layer_and_the_lambda_runtime(
    host_layer, host_function, tmp_path
):
    """Every module of functions/inference imports (Powertools Logger, Metrics, Tracer and the
    event handler included) with the trimmed layer plus what the Lambda runtime itself has."""
    import importlib.util

    runtime = tmp_path / "lambda-runtime"  # stands in for /var/lang/lib/python3.x/site-packages
    runtime.mkdir()
    for name in sorted(LAMBDA_RUNTIME_PACKAGES):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    modules = sorted(p.stem for p in host_function.glob("*.py"))
    modules += sorted(f"mlcore.{p.stem}" for p in (host_function / "mlcore").glob("*.py"))
    assert "app" in modules and "mlcore.predictor" in modules
    script = f"""
    import importlib
    for name in {modules!r}:
        importlib.import_module(name)
    import app
    assert callable(app.lambda_handler)
    sdk_before = sys.modules.get("aws_xray_sdk") is not None
    import os
    os.environ["TRACING_MODE"] = "xray-sdk"
    tracer = app.get_tracing().tracer
    print(json.dumps({{
        "foreign": foreign_modules({str(host_layer)!r}, {str(runtime)!r}, {str(host_function)!r}),
        "tracer": not tracer.disabled,
        "xray_sdk_before": sdk_before,
        "xray_sdk": sys.modules.get("aws_xray_sdk") is not None,
        "obstore": importlib.import_module("obstore.store").S3Store is not None,
    }}))
    """
    env = {
        "PATH": os.environ.get("PATH", ""),
        # as in Lambda: Powertools enables Tracer (and so imports the X-Ray SDK) only there
        "AWS_LAMBDA_FUNCTION_NAME": "layer-test",
        "LAMBDA_TASK_ROOT": str(host_function),
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "layer-test",
        "POWERTOOLS_METRICS_NAMESPACE": "LayerTest",
        "MODEL_BUCKET": "unused",
    }
    result = run_isolated(script, host_function, host_layer, runtime, env=env)
    assert result["foreign"] == {}
    assert result["tracer"] and result["xray_sdk"], (
        "Tracer did not load the X-Ray SDK from the layer"
    )
    assert not result["xray_sdk_before"], "the X-Ray SDK is imported only in TracingMode=xray-sdk"
    assert result["obstore"]
