"""``python -m local.demo``: the whole loop on one machine, offline, in about a minute.

1. S3 on loopback (``python -m local.s3``), the model bucket created;
2. a model: the newest one in ARTIFACTS/NAME/ trained on the same dataset, or a new one
   (``python -m training train``; ``--epochs``/``EPOCHS`` and ``--limit`` shorten it);
3. published to the registry on that S3 (``python -m training publish``);
4. the template's API on https://127.0.0.1:API_PORT (``python -m local.api``), with a
   certificate made at start that every request below verifies;
5. real HTTPS requests: held-out test digits (the test split of the model's own dataset,
   from ``training.data``, so none was seen in training) one per request as ``instances``,
   one as a PNG, one TF Serving predict, one metadata request, one bad request, one without
   the API key; then a table, the model's figures and where the logs and metrics went.

Everything it starts runs in its own process group and is stopped on the way out: at the
end, on failure, on Ctrl-C or SIGTERM. The ports are the ones given: a busy one is an error,
never silently replaced. Exit status 0 only if every request answered as expected.
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
from dataclasses import dataclass, field
from pathlib import Path

from local import processes
from local import s3 as local_s3
from local import template as tpl

ROOT = tpl.ROOT
DIGITS_FALLBACK = ROOT / "tests" / "fixtures" / "mnist" / "digits.npz"


class DemoError(Exception):
    """A step failed; the message says which and where its log is."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="S3 on loopback, train (or reuse), publish, serve the API locally over "
        "HTTPS, and send it real requests.",
    )
    parser.add_argument("--name", default="mnist")
    parser.add_argument("--dataset", default="mnist-sample")
    parser.add_argument(
        "--epochs",
        type=int,
        default=int(os.environ.get("EPOCHS") or 5),
        help="training epochs when a model is trained (default: $EPOCHS or 5)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="train on at most N examples (quick runs, CI)"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="train even if ARTIFACTS/NAME/ has a model"
    )
    parser.add_argument("--bucket", default=local_s3.DEFAULT_BUCKET)
    parser.add_argument("--prefix", default="models")
    parser.add_argument("--s3-port", type=int, default=local_s3.DEFAULT_PORT)
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--api-key", default=os.environ.get("API_KEY") or None)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument(
        "--digits",
        type=int,
        default=10,
        help="test digits sent as instances, one request each (default 10)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".local" / "demo",
        help="logs, certificate, env file (default: .local/demo)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if not 1 <= args.digits <= 100:
        parser.error(f"--digits must be 1..100, got {args.digits}")
    return args


@dataclass
class Check:
    """One request of the demo and what it should answer."""

    name: str
    method: str
    path: str
    expected_status: int
    status: int | None = None
    latency_ms: float | None = None
    body: dict | None = None
    true_label: str | None = None
    predicted: str | None = None
    confidence: float | None = None
    problem: str | None = None
    expected_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Demo:
    args: argparse.Namespace
    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = self.args.state_dir.resolve()
        self.api_key = self.args.api_key or base64.urlsafe_b64encode(os.urandom(24)).decode()
        # the children talk to the loopback S3 only, with dummy credentials: none of the
        # user's own AWS identity reaches them
        own = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in own},
            **local_s3.client_environment(self.args.s3_port),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
        self.python = sys.executable
        self.api_state = self.state / "api"

    # -- helpers -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, flush=True)

    def log(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def run_step(self, name: str, command: list[str]) -> None:
        """A child that runs to its end (training, publishing), its output in a log."""
        log = self.log(name)
        log.write_bytes(b"")
        started = time.perf_counter()
        process = processes.start(command, log=log, env=self.env, cwd=ROOT)
        self.children[name] = process
        try:
            code = process.wait()
        finally:
            processes.stop(process)
            del self.children[name]
        self.timings[name] = time.perf_counter() - started
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise DemoError(f"{name} failed (exit {code}); the end of {log}:\n{tail}")

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):  # the API before S3
            processes.stop(self.children.pop(name))

    # -- steps ---------------------------------------------------------------------------
    def check_ports(self) -> None:
        for what, port in (("S3", self.args.s3_port), ("API", self.args.api_port)):
            if not processes.port_free(port):
                raise DemoError(
                    f"port {port} ({what}) is busy on 127.0.0.1: stop what uses it "
                    f"or choose another --{what.lower()}-port"
                )

    def start_s3(self) -> None:
        import boto3
        from botocore.config import Config

        started = time.perf_counter()
        log = self.log("s3")
        log.write_bytes(b"")
        self.children["s3"] = processes.start(
            [
                self.python,
                "-m",
                "local.s3",
                "--port",
                str(self.args.s3_port),
                "--bucket",
                self.args.bucket,
            ],
            log=log,
            env=self.env,
            cwd=ROOT,
        )
        client = boto3.client(
            "s3",
            endpoint_url=local_s3.endpoint(self.args.s3_port),
            region_name=local_s3.REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1),
        )
        try:
            processes.wait_until(
                lambda: client.head_bucket(Bucket=self.args.bucket),
                30,
                self.children["s3"],
                "the S3 server",
            )
        except (TimeoutError, RuntimeError) as exc:
            raise DemoError(f"{exc}; see {log}") from None
        self.timings["s3"] = time.perf_counter() - started
        self.say(
            f"[1/5] S3 (moto) on {local_s3.endpoint(self.args.s3_port)}, bucket "
            f"{self.args.bucket}: ready in {self.timings['s3']:.1f} s"
        )

    def find_model(self) -> Path | None:
        folder = self.args.artifacts / self.args.name
        versions = sorted(
            (
                int(p.name)
                for p in folder.glob("*")
                if p.name.isdigit()
                and (p / "manifest.json").is_file()
                and (p / "model.tflite").is_file()
            ),
            reverse=True,
        )
        for version in versions:
            manifest = json.loads((folder / str(version) / "manifest.json").read_text())
            if manifest.get("dataset", {}).get("name") == self.args.dataset:
                return folder / str(version)
        return None

    def get_model(self) -> Path:
        artifact = None if self.args.retrain else self.find_model()
        if artifact is not None:
            self.say(f"[2/5] model: reusing {artifact} (--retrain trains a new one)")
            return artifact
        command = [
            self.python,
            "-m",
            "training",
            "train",
            "--name",
            self.args.name,
            "--dataset",
            self.args.dataset,
            "--epochs",
            str(self.args.epochs),
            "--artifacts",
            str(self.args.artifacts.resolve()),
        ]
        if self.args.limit:
            command += ["--limit", str(self.args.limit)]
        limit = f", {self.args.limit} examples" if self.args.limit else ""
        self.say(
            f"[2/5] training {self.args.name} on {self.args.dataset}, "
            f"{self.args.epochs} epoch(s){limit} (log: {self.log('train')}) ..."
        )
        self.run_step("train", command)
        artifact = self.find_model()
        if artifact is None:
            raise DemoError(
                f"training ended but left no model under {self.args.artifacts / self.args.name}"
            )
        self.say(f"      trained in {self.timings['train']:.1f} s: {artifact}")
        return artifact

    def publish(self, artifact: Path) -> None:
        self.run_step(
            "publish",
            [
                self.python,
                "-m",
                "training",
                "publish",
                "--name",
                self.args.name,
                "--bucket",
                self.args.bucket,
                "--prefix",
                self.args.prefix,
                "--artifacts",
                str(self.args.artifacts.resolve()),
                "--version",
                artifact.name,
            ],
        )
        self.say(
            f"[3/5] published version {artifact.name} to s3://{self.args.bucket}/"
            f"{self.args.prefix}/{self.args.name}/ in {self.timings['publish']:.1f} s"
        )

    def start_api(self) -> Path:
        import requests

        template = tpl.Template()
        function_id = template.function().logical_id
        env_vars = tpl.load_env_vars(tpl.DEFAULT_ENV_VARS)
        env_vars[function_id] = {
            **env_vars.get(function_id, {}),
            "MODEL_BUCKET": self.args.bucket,
            "MODEL_PREFIX": self.args.prefix,
            "MODEL_NAME": self.args.name,
            "MODEL_VERSION": "latest",
        }
        env_file = self.state / "env.json"
        env_file.write_text(json.dumps(env_vars, indent=2))
        started = time.perf_counter()
        log = self.log("api")
        log.write_bytes(b"")
        self.children["api"] = processes.start(
            [
                self.python,
                "-m",
                "local.api",
                "--port",
                str(self.args.api_port),
                "--api-key",
                self.api_key,
                "--env-vars",
                str(env_file),
                "--state-dir",
                str(self.api_state),
            ],
            log=log,
            env=self.env,
            cwd=ROOT,
        )
        ca = self.api_state / "ca.pem"
        url = f"https://127.0.0.1:{self.args.api_port}/health"

        def healthy() -> bool:
            return requests.get(url, verify=str(ca), timeout=5).status_code == 200

        try:
            processes.wait_until(healthy, 90, self.children["api"], "the local API")
        except (TimeoutError, RuntimeError) as exc:
            raise DemoError(f"{exc}; see {log} and {self.api_state / 'function.log'}") from None
        self.timings["api"] = time.perf_counter() - started
        self.say(
            f"[4/5] local API on https://127.0.0.1:{self.args.api_port} (certificate "
            f"{ca}): healthy in {self.timings['api']:.1f} s"
        )
        return ca

    def test_digits(self, manifest: dict):
        """Held-out digits of the model's own dataset: its test split, as training made it."""
        import numpy as np

        dataset = manifest.get("dataset", {})
        try:
            from training.data import held_out_split

            x, y = held_out_split(manifest)
            source = f"{dataset['name']} test split ({len(y)} digits none of which was trained on)"
        except Exception as exc:  # the dataset is not here (full MNIST offline) or differs
            with np.load(DIGITS_FALLBACK) as archive:
                x, y = archive["x"], archive["y"]
            source = f"{DIGITS_FALLBACK} ({exc})"
        # spread over the classes: the first test digit of each label, then the next ones
        order = sorted(range(len(y)), key=lambda i: (list(y[: i + 1]).count(y[i]), i))
        picked = order[: self.args.digits]
        return x[picked], y[picked], source

    def request(self, session, check: Check, ca: Path, payload=None, key: bool = True) -> None:
        self.checks.append(check)
        url = f"https://127.0.0.1:{self.args.api_port}{check.path}"
        headers = {"x-api-key": self.api_key} if key else {}
        started = time.perf_counter()
        response = session.request(
            check.method, url, json=payload, headers=headers, verify=str(ca), timeout=30
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
        x, y, source = self.test_digits(manifest)
        self.say(f"[5/5] requests (digits: {source})")
        name = self.args.name
        with requests.Session() as session:
            session.trust_env = False  # no proxies for loopback, no REQUESTS_CA_BUNDLE
            for i, (image, label) in enumerate(zip(x, y, strict=True)):
                check = Check(
                    f"digit {i + 1}", "POST", "/predict", 200, true_label=labels[int(label)]
                )
                self.request(session, check, ca, {"instances": [image.tolist()]})
                self.read_prediction(check, labels)
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(x[0], dtype=np.uint8).squeeze(), mode="L").save(
                buffer, "PNG"
            )
            check = Check("PNG image", "POST", "/predict", 200, true_label=labels[int(y[0])])
            self.request(
                session, check, ca, {"images": [base64.b64encode(buffer.getvalue()).decode()]}
            )
            self.read_prediction(check, labels)
            check = Check(
                "TF Serving",
                "POST",
                f"/v1/models/{name}:predict",
                200,
                true_label=labels[int(y[1 % len(y)])],
            )
            self.request(session, check, ca, {"instances": [x[1 % len(x)].tolist()]})
            if check.ok:
                row = check.body["predictions"][0]
                check.predicted = labels[int(np.argmax(row))]
                check.confidence = float(max(row))
            check = Check("metadata", "GET", f"/v1/models/{name}/metadata", 200)
            self.request(session, check, ca)
            if check.ok and "metadata" not in check.body:
                check.problem = f"no signature metadata in {check.body}"
            self.request(
                session,
                Check("bad shape", "POST", "/predict", 400, expected_code="INVALID_SHAPE"),
                ca,
                {"instances": [[1, 2, 3]]},
            )
            self.request(
                session,
                Check("no API key", "POST", "/predict", 403, expected_code="FORBIDDEN"),
                ca,
                {"instances": [x[0].tolist()]},
                key=False,
            )

    @staticmethod
    def read_prediction(check: Check, labels: list[str]) -> None:
        if not check.ok:
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
            if not c.ok:
                status += f"  <-- {c.problem}"
            rows.append(
                (
                    f"{c.name}: {c.method} {c.path}",
                    c.true_label or "",
                    c.predicted or "",
                    f"{c.confidence:.3f}" if c.confidence is not None else "",
                    f"{c.latency_ms:.1f}" if c.latency_ms is not None else "",
                    status,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print()
        for n, row in enumerate(rows):
            print(
                "  ".join(
                    cell.rjust(w) if 0 < i < 5 else cell.ljust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
            )
            if n == 0:
                print("  ".join("-" * w for w in widths))
        digits = [c for c in self.checks if c.true_label is not None and c.predicted is not None]
        right = sum(c.true_label == c.predicted for c in digits)
        latencies = sorted(c.latency_ms for c in self.checks if c.name.startswith("digit"))
        evaluation, sizes = manifest.get("evaluation", {}), manifest.get("sizes", {})
        print(
            f"\n{right} of {len(digits)} digits right; batch-1 /predict latency over HTTPS: "
            f"median {latencies[len(latencies) // 2]:.1f} ms (client side, warm)"
            if latencies
            else ""
        )
        print(
            f"Model {manifest.get('name')} version {manifest.get('version')} "
            f"({artifact}), quantization {manifest.get('quantization', {}).get('mode')}:"
        )
        if "quantized" in evaluation:
            from training.evaluate import describe_accuracy

            print(
                f"  accuracy on {evaluation['quantized']['n']} held-out test examples, with 95% "
                f"intervals: float {describe_accuracy(evaluation['float'])}, "
                f"{manifest['quantization']['mode']} {describe_accuracy(evaluation['quantized'])} "
                f"(drop {evaluation['accuracy_drop_points']:.2f} points)"
            )
        if sizes:
            small, large = sizes.get("tflite_bytes"), sizes.get("float32_tflite_bytes")
            ratio = f", {large / small:.1f}x smaller" if small and large else ""
            print(f"  size: {small:,} bytes as served, {large:,} bytes as float32{ratio}")
        function_log = self.api_state / "function.log"
        metrics = logs = 0
        if function_log.is_file():
            for line in function_log.read_text(errors="replace").splitlines():
                metrics += line.startswith('{"_aws"')
                logs += line.startswith('{"level"')
        print("Logs and metrics:")
        print(
            f"  function (JSON logs: {logs} lines, EMF metrics: {metrics} lines, "
            f"START/END/REPORT): {function_log}"
        )
        print(f"  local API (access log): {self.log('api')}")
        print(f"  S3 server: {self.log('s3')}")
        for step in ("train", "publish"):
            if self.log(step).is_file() and step in self.timings:
                print(f"  {step}: {self.log(step)}")

    def run(self) -> bool:
        started = time.perf_counter()
        self.state.mkdir(parents=True, exist_ok=True)
        self.check_ports()
        self.start_s3()
        artifact = self.get_model()
        manifest = json.loads((artifact / "manifest.json").read_text())
        self.publish(artifact)
        ca = self.start_api()
        self.send_requests(ca, manifest)
        self.report(manifest, artifact)
        failed = [c for c in self.checks if not c.ok]
        total = time.perf_counter() - started
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        print(
            f"\nDemo {'passed' if not failed else 'FAILED'} in {total:.1f} s ({steps})"
            + (f": {len(failed)} request(s) answered wrongly" if failed else ""),
            flush=True,
        )
        return not failed


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    demo = Demo(args)
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
