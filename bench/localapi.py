"""Measure 6 (informational): the local API's requests per second at 1 and 20 concurrent clients.

Production scaling is Lambda's (one request per execution environment, as many environments as
the concurrency limit allows); this is the Docker-free emulator on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from bench.common import FUNCTION_ENV, ROOT, summary_ms
from bench.s3local import free_port, wait_for_port


def available() -> bool:
    return (ROOT / "local" / "api.py").is_file()


def run(
    body: bytes, env: dict[str, str], work: Path, clients: list[int], seconds: float, log=print
) -> dict:
    if not available():
        return {"measured": False, "reason": "python -m local.api does not exist yet"}
    import requests
    import urllib3

    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    port = free_port()
    key = "bench-api-key-0123456789"
    env_vars = work / "env.json"
    env_vars.write_text(
        json.dumps(
            {
                "InferenceFunction": {
                    k: v for k, v in env.items() if k in FUNCTION_ENV or k.startswith("MODEL_")
                }
            }
        )
    )
    log_path = work / "local-api.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.api",
                "--port",
                str(port),
                "--api-key",
                key,
                "--quiet",
                "--env-vars",
                str(env_vars),
                "--state-dir",
                str(work / "local-api"),
            ],
            cwd=str(ROOT),
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        wait_for_port(port, process, timeout=60)
        url = f"https://127.0.0.1:{port}/predict"
        headers = {"Content-Type": "application/json", "x-api-key": key}
        session = requests.Session()
        # Warm: the first requests start execution environments (their cold starts).
        for _ in range(max(clients) + 2):
            response = session.post(url, data=body, headers=headers, verify=False, timeout=60)
            if response.status_code != 200:
                raise RuntimeError(
                    f"local API answered {response.status_code}: {response.text[:200]}"
                )
        results = {}
        for count in clients:
            results[str(count)] = _load(url, body, headers, count, seconds)
            log(
                f"  local API, {count} clients: "
                f"{results[str(count)]['requests_per_second']:.0f} req/s, "
                f"p50 {results[str(count)]['latency']['p50_ms']:.1f} ms"
            )
        environments = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if "environments" in line.lower()
        ][:1]
        return {
            "measured": True,
            "scheme": "https (self-signed, keep-alive sessions)",
            "endpoint": "POST /predict, 1 instance",
            "seconds_per_level": seconds,
            "server_note": environments[0] if environments else "",
            "clients": results,
        }
    except Exception as exc:  # informational: never fail the bench for it
        return {"measured": False, "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _load(url: str, body: bytes, headers: dict, clients: int, seconds: float) -> dict:
    import requests

    stop = time.monotonic() + seconds
    latencies: list[list[int]] = [[] for _ in range(clients)]
    failures = [0] * clients

    def client(index: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            started = time.perf_counter_ns()
            try:
                ok = (
                    session.post(
                        url, data=body, headers=headers, verify=False, timeout=60
                    ).status_code
                    == 200
                )
            except requests.RequestException:
                ok = False
            if ok:
                latencies[index].append(time.perf_counter_ns() - started)
            else:
                failures[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    done = [v for values in latencies for v in values]
    return {
        "requests": len(done),
        "failures": sum(failures),
        "requests_per_second": round(len(done) / elapsed, 1),
        "latency": summary_ms(done),
    }


if __name__ == "__main__":
    print("run through python -m bench", file=sys.stderr)
    os._exit(2)
