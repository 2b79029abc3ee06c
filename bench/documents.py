"""The registry documents' validator, chosen by measurement (issue 25): import + one pointer and
one manifest validated, in fresh processes (a cold start's cost), and the per-document cost
warm, side by side for the candidates:

- generated: fastjsonschema's code compiled ahead of time (mlcore/*_schema.py, what the
  function runs, through mlcore.documents with its strict JSON parse);
- jsonschema: the reference validator (Draft4Validator over the same schema files);
- floor: json.loads alone (what reading the documents costs without any validation).

`python -m bench.documents [--runs N]` prints medians in ms and ratios to the floor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POINTER = json.dumps(
    {"version": 1796000000, "revision": 3, "canary": {"version": 1796003600, "share": 10}}
)
MANIFEST = (ROOT / "tests" / "fixtures" / "mnist" / "manifest.json").read_text()

# candidate: (setup once: imports, compiled validators; the work per pair of documents)
CANDIDATES = {
    "generated": (
        "from mlcore import documents",
        "documents.parse(POINTER, documents.POINTER); "
        "documents.parse(MANIFEST, documents.MANIFEST)",
    ),
    "jsonschema": (
        "import json, jsonschema\n"
        "load = lambda n: json.load(open(f'mlcore/schemas/{n}.v1.schema.json'))\n"
        "v = {n: jsonschema.Draft4Validator(load(n)) for n in ('pointer', 'manifest')}",
        "v['pointer'].validate(json.loads(POINTER)); v['manifest'].validate(json.loads(MANIFEST))",
    ),
    "floor": ("import json", "json.loads(POINTER); json.loads(MANIFEST)"),
}


def child(setup: str, work: str, warm_runs: int) -> str:
    """The child's program: setup and the work once (cold), then the work warm_runs times."""
    return f"""
import time, json
POINTER = {POINTER!r}
MANIFEST = {MANIFEST!r}
t0 = time.perf_counter()
{setup}
{work}
cold = (time.perf_counter() - t0) * 1000
t1 = time.perf_counter()
for _ in range({warm_runs}):
    {work}
warm = (time.perf_counter() - t1) * 1000 / {warm_runs}
print(json.dumps([cold, warm]))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.documents")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    results: dict[str, list] = {name: [] for name in CANDIDATES}
    for _ in range(args.runs):  # interleaved: the machine's noise falls on every candidate
        for name, (setup, work) in CANDIDATES.items():
            out = subprocess.run(
                [args.python, "-c", child(setup, work, 200)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[name].append(json.loads(out))
    floor = statistics.median(c for c, _ in results["floor"])
    print(f"{'candidate':12} {'cold ms':>9} {'x floor':>8} {'warm us/pair':>13}")
    for name, runs in results.items():
        cold = statistics.median(c for c, _ in runs)
        warm = statistics.median(w for _, w in runs) * 1000
        print(f"{name:12} {cold:9.2f} {cold / floor:8.2f} {warm:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
