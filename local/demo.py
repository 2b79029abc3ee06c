"""``python -m local.demo``: the whole loop on one machine, offline, in about a minute.

1. S3 on loopback (``python -m local.s3``), the model bucket created;
2. a model: the newest one in ARTIFACTS/NAME/ if it was trained on this very dataset (same
   DATASET, same files) and passed its gate, else a new one (``python -m training train``; the
   training job's own defaults unless given; a model its gate refuses stops the demo);
3. published to the registry on that S3 (``python -m training publish``);
4. the template's API on https://127.0.0.1:API_PORT (``python -m local.api``) with the
   template's parameters (its defaults, ``--parameter-overrides``, and the bucket, name and
   prefix above), behind a certificate that every request below verifies;
5. real HTTPS requests: held-out examples of the model's own run (``held_out_split`` of its
   manifest: none was seen in training) one per request as ``instances``, one as a PNG, a TF
   Serving predict, a metadata request, a bad request, one without the API key, and the
   page to draw on (``GET /``, the key filled in); then a table, the model's figures, where
   the logs and metrics went, and the page's address (``--serve`` keeps it up until Ctrl-C).

Everything it starts runs in its own process group and is stopped on the way out: at the
end, on failure, on Ctrl-C or SIGTERM. A busy port is an error, never silently replaced.
Exit status 0 only if every request answered as expected.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local import processes
from local import s3 as local_s3
from local import template as tpl
from mlcore.registry import is_decimal

DIGITS_FALLBACK = tpl.ROOT / "tests" / "fixtures" / "mnist" / "digits.npz"


class DemoError(Exception):
    """A step failed; the message says which and where its log is."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="S3 on loopback, train (or reuse), publish, serve the API locally over "
        "HTTPS, and send it real requests.",
    )
    parser.add_argument("--bucket", required=True, help="the registry bucket on the local S3")
    parser.add_argument("--name", help="model name (default: the template's ModelName)")
    parser.add_argument("--prefix", help="registry prefix (default: the template's ModelPrefix)")
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="for the API"
    )
    for flag in ("--dataset", "--epochs", "--limit", "--artifacts"):
        parser.add_argument(flag, help="for the training job (default: its own)")
    parser.add_argument(
        "--retrain", action="store_true", help="train even if a usable model exists (RETRAIN=1)"
    )
    parser.add_argument("--s3-port", type=int, default=local_s3.DEFAULT_PORT)
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--api-key", default=os.environ.get("API_KEY") or None)
    parser.add_argument(
        "--examples", type=int, default=10, help="held-out examples sent, one request each"
    )
    parser.add_argument("--state-dir", type=Path, default=tpl.ROOT / ".local" / "demo")
    parser.add_argument(
        "--serve", action="store_true", help="keep S3 and the API (and its page) up until Ctrl-C"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.examples <= 100:
        parser.error(f"--examples must be 1..100, got {args.examples}")
    return args


def why_not_reuse(artifact: Path, dataset: str) -> str | None:
    """Why the model in `artifact` must not serve the demo of `dataset` (None: it may): made
    from other data (another DATASET, or the same one whose files changed since), or refused by
    its gate (also when it was kept with FORCE=1)."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    recorded = manifest.get("dataset", {})
    if recorded.get("name") != dataset:
        return f"the newest model ({artifact}) was trained on {recorded.get('name')}"
    from training.data import DatasetError, load_dataset

    try:
        sha256 = load_dataset(dataset).sha256
    except DatasetError as exc:
        raise DemoError(str(exc)) from None
    if sha256 != recorded.get("sha256"):
        return f"{dataset} changed since the newest model ({artifact}) was trained on it"
    gate = manifest.get("evaluation", {}).get("gate") or {}
    if not gate.get("passed", True):
        return f"the newest model ({artifact}) failed its gate"
    return None


@dataclass
class Check:
    """One request of the demo and what it should answer."""

    name: str
    method: str
    path: str
    expected_status: int
    expected_code: str | None = None
    true_label: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    body: dict | None = None
    predicted: str | None = None
    confidence: float | None = None
    problem: str | None = None


class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.state = args.state_dir.resolve()
        self.api_state = self.state / "api"
        self.children: dict[str, subprocess.Popen] = {}
        self.checks: list[Check] = []
        self.timings: dict[str, float] = {}
        self.api_key = args.api_key or base64.urlsafe_b64encode(os.urandom(24)).decode()
        # the template's parameters, with the registry the demo publishes to
        self.parameters = tpl.parse_parameter_overrides(args.parameter_overrides)
        given = {"BucketName": args.bucket, "ModelName": args.name, "ModelPrefix": args.prefix}
        self.parameters.update({k: v for k, v in given.items() if v})
        template = tpl.Template(parameter_overrides=self.parameters)
        for key in ("ModelName", "ModelPrefix"):
            self.parameters.setdefault(key, template.default(key))
        self.name, self.prefix = self.parameters["ModelName"], self.parameters["ModelPrefix"]
        self.artifacts = Path(args.artifacts or "artifacts").resolve()
        # the children talk to the loopback S3 only, with dummy credentials: none of the
        # user's own AWS identity reaches them
        own = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in own},
            **local_s3.client_environment(args.s3_port),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }

    def say(self, text: str) -> None:
        print(text, flush=True)

    def log(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def start(self, name: str, *module_and_args: str) -> subprocess.Popen:
        self.log(name).write_bytes(b"")
        command = [sys.executable, "-m", *module_and_args]
        process = processes.start(command, log=self.log(name), env=self.env, cwd=tpl.ROOT)
        self.children[name] = process
        return process

    def run_step(self, name: str, *module_and_args: str) -> None:
        """A child that runs to its end (training, publishing), its output in a log."""
        started = time.perf_counter()
        process = self.start(name, *module_and_args)
        try:
            code = process.wait()
        finally:
            processes.stop(self.children.pop(name))
        self.timings[name] = time.perf_counter() - started
        if code != 0:
            tail = "\n".join(self.log(name).read_text(errors="replace").splitlines()[-15:])
            raise DemoError(f"{name} failed (exit {code}); the end of {self.log(name)}:\n{tail}")

    def wait_ready(self, name: str, check, what: str, logs: str) -> None:
        started = time.perf_counter()
        try:
            processes.wait_until(check, 90, self.children[name], what)
        except (TimeoutError, RuntimeError) as exc:
            raise DemoError(f"{exc}; see {logs}") from None
        self.timings[name] = time.perf_counter() - started

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):  # the API before S3
            processes.stop(self.children.pop(name))

    # -- steps ---------------------------------------------------------------------------
    def start_s3(self) -> None:
        import boto3
        from botocore.config import Config

        port, bucket = self.args.s3_port, self.args.bucket
        self.start("s3", "local.s3", "--port", str(port), "--bucket", bucket)
        client = boto3.client(
            "s3",
            endpoint_url=local_s3.endpoint(port),
            region_name=local_s3.REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1),
            **{k.lower(): v for k, v in local_s3.DUMMY_CREDENTIALS.items()},
        )
        self.wait_ready("s3", lambda: client.head_bucket(Bucket=bucket), "S3", self.log("s3"))
        self.say(
            f"[1/5] S3 (moto) on {local_s3.endpoint(port)}, bucket {bucket}: ready in "
            f"{self.timings['s3']:.1f} s"
        )

    def newest_model(self) -> Path | None:
        folder = self.artifacts / self.name
        versions = sorted(
            (p for p in folder.glob("*") if is_decimal(p.name)), key=lambda p: -int(p.name)
        )
        for version in versions:
            if (version / "model.tflite").is_file() and (version / "manifest.json").is_file():
                return version
        return None

    def get_model(self) -> Path:
        from training.config import TrainConfig

        dataset = self.args.dataset or TrainConfig().dataset
        artifact = self.newest_model()
        if self.args.retrain:
            why = "RETRAIN=1"
        elif artifact is None:
            why = f"no model under {self.artifacts / self.name} yet"
        else:
            why = why_not_reuse(artifact, dataset)
        if why is None:
            self.say(
                f"[2/5] model: reusing {artifact}, trained on {dataset} (RETRAIN=1 trains anew)"
            )
            return artifact
        command = ["training", "train", "--name", self.name, "--artifacts", str(self.artifacts)]
        for flag in ("dataset", "epochs", "limit"):
            if getattr(self.args, flag):
                command += [f"--{flag}", getattr(self.args, flag)]
        self.say(f"[2/5] training {self.name} on {dataset} ({why}; log: {self.log('train')}) ...")
        self.run_step("train", *command)
        artifact = self.newest_model()
        if artifact is None or why_not_reuse(artifact, dataset):
            raise DemoError(f"training left no usable model under {self.artifacts / self.name}")
        self.say(f"      trained in {self.timings['train']:.1f} s: {artifact}")
        return artifact

    def publish(self, artifact: Path) -> None:
        registry = ["--name", self.name, "--bucket", self.args.bucket, "--prefix", self.prefix]
        artifacts = ["--artifacts", str(self.artifacts), "--version", artifact.name]
        self.run_step("publish", "training", "publish", *registry, *artifacts)
        self.say(
            f"[3/5] published version {artifact.name} to s3://{self.args.bucket}/{self.prefix}/"
            f"{self.name}/ in {self.timings['publish']:.1f} s"
        )

    def start_api(self) -> Path:
        import requests

        port = str(self.args.api_port)
        overrides = [f"{k}={v}" for k, v in self.parameters.items()]
        options = ["--port", port, "--api-key", self.api_key, "--state-dir", str(self.api_state)]
        self.start("api", "local.api", *options, "--parameter-overrides", *overrides)
        ca = self.api_state / "ca.pem"
        url = f"https://127.0.0.1:{port}/health/deep"  # with the key: loads the model
        key = {"x-api-key": self.api_key}
        self.wait_ready(
            "api",
            lambda: requests.get(url, headers=key, verify=str(ca), timeout=5).status_code == 200,
            "the local API",
            f"{self.log('api')} and {self.api_state / 'function.log'}",
        )
        self.say(
            f"[4/5] local API on https://127.0.0.1:{port} (certificate {ca}): healthy in "
            f"{self.timings['api']:.1f} s"
        )
        return ca

    def page_url(self) -> str:
        return f"https://127.0.0.1:{self.args.api_port}/"

    def check_page(self, session, ca: Path) -> None:
        """GET /, without a key: the page to draw on, with this API's key filled in."""
        import html

        check = Check("page to draw on", "GET", "/", 200)
        self.checks.append(check)
        started = time.perf_counter()
        response = session.get(self.page_url(), verify=str(ca), timeout=30)
        check.latency_ms = (time.perf_counter() - started) * 1000
        check.status = response.status_code
        filled = f'id="api-key" value="{html.escape(self.api_key, quote=True)}"'
        if check.status != 200 or not response.headers.get("content-type", "").startswith(
            "text/html"
        ):
            check.problem = f"expected the page (200 text/html), got {check.status}"
        elif 'id="pad"' not in response.text or filled not in response.text:
            check.problem = "the page lacks its drawing pad or the API key"

    def test_examples(self, manifest: dict):
        """Held-out examples of the model's own run, spread over the classes."""
        import numpy as np

        try:
            from training.data import held_out_split

            x, y = held_out_split(manifest)
            source = f"the run's own test split ({len(y)} examples, none trained on)"
        except Exception as exc:  # the dataset is not here (full MNIST offline) or differs
            with np.load(DIGITS_FALLBACK) as archive:
                x, y = archive["x"], archive["y"]
            source = f"{DIGITS_FALLBACK} ({exc})"
        seen: dict[int, int] = {}
        rank = [seen.__setitem__(int(v), seen.get(int(v), 0) + 1) or seen[int(v)] for v in y]
        picked = sorted(range(len(y)), key=lambda i: (rank[i], i))[: self.args.examples]
        return x[picked], y[picked], source

    def request(self, session, check: Check, ca: Path, payload=None, key: bool = True) -> None:
        self.checks.append(check)
        started = time.perf_counter()
        response = session.request(
            check.method,
            f"https://127.0.0.1:{self.args.api_port}{check.path}",
            json=payload,
            headers={"x-api-key": self.api_key} if key else {},
            verify=str(ca),
            timeout=30,
        )
        check.latency_ms = (time.perf_counter() - started) * 1000
        check.status = response.status_code
        try:
            check.body = response.json()
        except ValueError:
            check.problem = f"answer is not JSON: {response.text[:100]!r}"
            return
        if check.status != check.expected_status:
            check.problem = f"expected {check.expected_status}, got {check.status}: {check.body}"
        elif check.expected_code and check.body.get("code") != check.expected_code:
            check.problem = f"expected code {check.expected_code}, got {check.body}"

    def send_requests(self, ca: Path, manifest: dict) -> None:
        import numpy as np
        import requests
        from PIL import Image

        labels = manifest["labels"]
        x, y, source = self.test_examples(manifest)
        self.say(f"[5/5] requests (examples: {source})")
        with requests.Session() as session:
            session.trust_env = False  # no proxies for loopback, no REQUESTS_CA_BUNDLE
            for i, (image, label) in enumerate(zip(x, y, strict=True)):
                check = Check(f"example {i + 1}", "POST", "/predict", 200, true_label=labels[label])
                self.request(session, check, ca, {"instances": [image.tolist()]})
                self.read_prediction(check, labels)
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(x[0], dtype=np.uint8).squeeze()).save(buffer, "PNG")
            check = Check("PNG image", "POST", "/predict", 200, true_label=labels[y[0]])
            png = base64.b64encode(buffer.getvalue()).decode()
            self.request(session, check, ca, {"images": [png]})
            self.read_prediction(check, labels)
            j = 1 % len(y)
            path = f"/v1/models/{self.name}:predict"
            check = Check("TF Serving", "POST", path, 200, true_label=labels[y[j]])
            self.request(session, check, ca, {"instances": [x[j].tolist()]})
            if check.problem is None:
                row = check.body["predictions"][0]
                check.predicted, check.confidence = labels[int(np.argmax(row))], float(max(row))
            check = Check("metadata", "GET", f"/v1/models/{self.name}/metadata", 200)
            self.request(session, check, ca)
            if check.problem is None and "metadata" not in check.body:
                check.problem = f"no signature metadata in {check.body}"
            bad = Check("bad shape", "POST", "/predict", 400, "INVALID_SHAPE")
            self.request(session, bad, ca, {"instances": [[1, 2, 3]]})
            forbidden = Check("no API key", "POST", "/predict", 403, "FORBIDDEN")
            self.request(session, forbidden, ca, {"instances": [x[0].tolist()]}, key=False)
            self.check_page(session, ca)

    @staticmethod
    def read_prediction(check: Check, labels: list[str]) -> None:
        if check.problem is not None:
            return
        try:
            prediction = check.body["predictions"][0]
            check.predicted = str(prediction["label"])
            check.confidence = float(prediction["confidence"])
        except (KeyError, IndexError, TypeError, ValueError):
            check.problem = f"no prediction in {check.body}"
            return
        if check.predicted not in labels:
            check.problem = f"label {check.predicted!r} is not one of the model's labels"

    # -- report --------------------------------------------------------------------------
    def report(self, manifest: dict, artifact: Path) -> None:
        rows = [("request", "true", "predicted", "confidence", "latency ms", "status")]
        for c in self.checks:
            status = str(c.status)
            if c.body and c.status and c.status >= 400:
                status += f" {c.body.get('code', '')}"
            if c.problem:
                status += f"  <-- {c.problem}"
            confidence = f"{c.confidence:.3f}" if c.confidence is not None else ""
            latency = f"{c.latency_ms:.1f}" if c.latency_ms is not None else ""
            row = (f"{c.name}: {c.method} {c.path}", c.true_label or "", c.predicted or "")
            rows.append((*row, confidence, latency, status))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print()
        for n, row in enumerate(rows):
            cells = zip(row, widths, strict=True)
            print(
                "  ".join(
                    c.rjust(w) if 0 < i < 5 else c.ljust(w) for i, (c, w) in enumerate(cells)
                ).rstrip()
            )
            if n == 0:
                print("  ".join("-" * w for w in widths))
        answered = [c for c in self.checks if c.true_label is not None and c.predicted is not None]
        right = sum(c.true_label == c.predicted for c in answered)
        latencies = sorted(c.latency_ms for c in self.checks if c.name.startswith("example"))
        if latencies:
            print(
                f"\n{right} of {len(answered)} right; batch-1 /predict latency over HTTPS: "
                f"median {latencies[len(latencies) // 2]:.1f} ms (client side, warm)"
            )
        evaluation, sizes = manifest.get("evaluation", {}), manifest.get("sizes", {})
        print(
            f"Model {manifest.get('name')} version {manifest.get('version')} ({artifact}), "
            f"quantization {manifest.get('quantization', {}).get('mode')}:"
        )
        if "quantized" in evaluation:
            from training.evaluate import describe_accuracy

            print(
                f"  accuracy on {evaluation['quantized']['n']} held-out test examples, with 95% "
                f"intervals: float {describe_accuracy(evaluation['float'])}, "
                f"{manifest['quantization']['mode']} {describe_accuracy(evaluation['quantized'])} "
                f"(drop {evaluation['accuracy_drop_points']:.2f} points)"
            )
        small, large = sizes.get("tflite_bytes"), sizes.get("float32_tflite_bytes")
        if small and large:
            ratio = f"{large / small:.1f}x smaller"
            print(f"  size: {small:,} bytes as served, {large:,} bytes as float32, {ratio}")
        function_log = self.api_state / "function.log"
        text = function_log.read_text(errors="replace") if function_log.is_file() else ""
        lines = text.splitlines()
        metrics = sum(line.startswith('{"_aws"') for line in lines)
        logs = sum(line.startswith('{"level"') for line in lines)
        print("Logs and metrics:")
        counts = f"JSON logs: {logs} lines, EMF metrics: {metrics} lines, START/END/REPORT"
        print(f"  function ({counts}): {function_log}")
        endpoint = self.env["AWS_ENDPOINT_URL_CLOUDWATCH"]
        print(f"  the EMF metrics, also in the local CloudWatch (the drift monitor's): {endpoint}")
        print(f"  local API (access log): {self.log('api')}\n  S3 server: {self.log('s3')}")
        for step in ("train", "publish"):
            if step in self.timings:
                print(f"  {step}: {self.log(step)}")
        ca = self.api_state / "ca.pem"
        print(
            f"Page to draw on: {self.page_url()} (the API key filled in; the browser does not "
            f"know the certificate's CA, {ca}: accept its warning or import the CA)"
            + ("" if self.args.serve else "; `make demo SERVE=1` keeps it up")
        )

    def run(self) -> bool:
        started = time.perf_counter()
        self.state.mkdir(parents=True, exist_ok=True)
        for what, port in (("s3", self.args.s3_port), ("api", self.args.api_port)):
            if not processes.port_free(port):
                raise DemoError(
                    f"port {port} ({what.upper()}) is busy on 127.0.0.1: stop what uses it or "
                    f"choose another --{what}-port"
                )
        self.start_s3()
        artifact = self.get_model()
        manifest = json.loads((artifact / "manifest.json").read_text())
        self.publish(artifact)
        ca = self.start_api()
        self.send_requests(ca, manifest)
        self.report(manifest, artifact)
        failed = [c for c in self.checks if c.problem]
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        print(
            f"\nDemo {'FAILED' if failed else 'passed'} in {time.perf_counter() - started:.1f} s "
            f"({steps})" + (f": {len(failed)} request(s) answered wrongly" if failed else ""),
            flush=True,
        )
        if self.args.serve and not failed:
            self.serve()
        return not failed

    def serve(self) -> None:
        self.say(f"\nServing until Ctrl-C: the page on {self.page_url()}, S3 and the API.")
        try:
            code = self.children["api"].wait()
        except KeyboardInterrupt:
            self.say("stopping")
            return
        raise DemoError(f"the local API exited ({code}); see {self.log('api')}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        demo = Demo(args)
    except tpl.TemplateError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # stop everything, as for Ctrl-C
    try:
        return 0 if demo.run() else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what the demo started", file=sys.stderr, flush=True)
        return 130
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        demo.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
