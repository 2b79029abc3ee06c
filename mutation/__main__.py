"""`python -m mutation [--max-children N] [--resume [NAME...] | --report-only]`
(`make mutation`): mutmut over the shared core (mlcore/) and the function's pure modules
(router.py, canary.py), with the unit tests that reach them; writes mutation/SUMMARY.md and
exits 1 if a module misses its goal or a surviving mutant is neither killed nor listed in
mutation/equivalent.toml.

The run happens in the staged tree .mutation/ (mutation/stage.py says why) and its results stay
there. `--resume` (after adding tests or changing code, or after a run cut short) keeps them:
every mutant without a kill is tested again with today's tests (those of the modules with a
goal first), then the mutants of functions changed since.
`--resume NAME...` tests again only the mutants named (after adding a test that targets them).
`--report-only` writes the summary again (after editing equivalent.toml) without a run. What
mutmut runs is configured in pyproject.toml's [tool.mutmut].
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

from mutation import report
from mutation.stage import STAGE, stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="keep the last results; test again what survived"
    )
    mode.add_argument(
        "--report-only", action="store_true", help="summarise the last run in .mutation/ again"
    )
    parser.add_argument(
        "mutants",
        nargs="*",
        help="with --resume: test again only these mutants (mutmut's names, * matching any text), "
        "e.g. those a new test targets",
    )
    args = parser.parse_args(argv)
    if args.mutants and not args.resume:
        parser.error("naming mutants needs --resume (a fresh stage tests every mutant)")
    runs_file = STAGE / "runs.json"  # every run since the tree was last staged afresh
    if not args.report_only:
        resumed = args.resume and (STAGE / "mutants").is_dir()
        # read before staging: stage() lays out the tree anew, runs.json included
        runs = json.loads(runs_file.read_text()) if resumed and runs_file.exists() else []
        stage(keep_results=resumed)
        started, now = time.monotonic(), datetime.now(UTC)
        mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
        complete = False
        try:
            if resumed and args.mutants:
                subprocess.run([*mutmut, *args.mutants], cwd=STAGE, check=True)
            elif resumed:
                # every mutant without a kill, again with today's tests: the modules with a
                # goal first, then those with a goal next, then the others, fewest first
                # (mutmut orders what it is given by expected time, not by module: a run cut
                # short can leave a module out)
                modules, _ = report.collect(STAGE, diffs=False)
                goal = [m for m in modules if m.path in report.GOAL_MODULES]
                first = report.GOAL_MODULES + report.NEXT_GOAL_MODULES
                following = [[m] for p in report.NEXT_GOAL_MODULES for m in modules if m.path == p]
                others = sorted(
                    (m for m in modules if m.path not in first), key=lambda m: len(m.undetected)
                )
                for batch in (goal, *following, *([m] for m in others)):
                    names = [name for m in batch for name, _ in m.undetected]
                    if names:
                        subprocess.run([*mutmut, *names], cwd=STAGE, check=True)
            if not args.mutants:
                # the mutants not tested yet (all of them on a fresh stage; on a resume, those
                # of functions changed since)
                subprocess.run(mutmut, cwd=STAGE, check=True)
            complete = True
        finally:  # a run cut short (stopped, or a failure) is recorded as such
            runs.append(
                {
                    "kind": "targeted" if args.mutants else "resumed" if resumed else "fresh",
                    "started": now.strftime("%Y-%m-%d %H:%M UTC"),
                    "minutes": round((time.monotonic() - started) / 60, 1),
                    "max_children": args.max_children,
                    "complete": complete,
                }
            )
            runs_file.write_text(json.dumps(runs))
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else []
    modules, diffs = report.collect(STAGE)
    history = "; ".join(
        f"{run['kind']} {run['started']}, {run['minutes']} min, "
        f"{run['max_children']} mutant(s) at once" + ("" if run["complete"] else " (cut short)")
        for run in runs
    )
    header = (
        "# Mutation testing (`make mutation`)\n\n"
        f"mutmut {metadata.version('mutmut')}, {sum(sum(m.statuses.values()) for m in modules)} "
        f"mutants. Runs since the tree was staged afresh: {history or 'not recorded'} "
        "(nice'd, on 2 cores shared with other work; `--resume` tests "
        "every mutant without a kill again with the tests of that moment). Tests and paths: "
        "pyproject.toml's `[tool.mutmut]`; how the tree is staged: `mutation/stage.py`; score "
        "and statuses: `mutation/report.py`. A mutant listed below survived every test that "
        "reaches it; `mutation/equivalent.toml` says why each equivalent one cannot be told "
        "apart from the original."
    )
    text, problems = report.render(modules, diffs, report.load_equivalents(), header)
    report.SUMMARY_FILE.write_text(text)
    print(f"wrote {report.SUMMARY_FILE}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
