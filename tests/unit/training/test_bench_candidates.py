"""bench/candidates.py's tables, from made-up results: the docs' order whatever order the runs
were made in, a run ended by its budget marked, the mean over seeds, unknown candidates refused."""

from __future__ import annotations

import json

import pytest

from bench import candidates


def run(candidate, set_name, seed, accuracy, stopped="converged", **more):
    score = {"accuracy": accuracy, "ci95": [accuracy - 0.05, min(1.0, accuracy + 0.05)], "n": 200}
    return {
        "candidate": candidate,
        "set": set_name,
        "seed": seed,
        "exit": 0,
        "seconds": 60.0,
        "load": [2.0, 3.0],
        "float": score,
        "int8": score,
        "bytes": 1000,
        "latency_ms": 0.2,
        "epochs": 30,
        "phases": [],
        "stopped": stopped,
        **more,
    }


def test_the_table_reads_in_set_then_candidate_then_seed_order_and_marks_a_budget():
    results = [
        run("cnn, light", "letters", 2, 0.9),
        {
            "candidate": "reference CNN (float)",
            "set": "letters",
            "seed": 42,
            "seconds": 20.0,
            "float": {"accuracy": 0.8, "ci95": [0.7, 0.9], "n": 200},
            "epochs": 30,
            "load": [1, 1],
        },
        run("mobilenet, none", "letters", 42, 0.5, stopped="budget"),
        run("cnn", "mnist-sample", 42, 0.96),
        run("cnn, light", "letters", 1, 0.95),
    ]
    rows = candidates.table(results).splitlines()[2:]
    order = [tuple(cell.strip() for cell in row.split("|")[1:4]) for row in rows]
    assert order == [
        ("mnist-sample", "cnn", "42"),
        ("letters", "cnn, light", "1"),
        ("letters", "cnn, light", "2"),
        ("letters", "mobilenet, none", "42"),
        ("letters", "reference CNN (float)", "42"),
    ]
    assert "| 30, budget |" in rows[3]
    assert "| 30 |" in rows[1]  # converged: nothing added
    reference = [cell.strip() for cell in rows[4].split("|")[1:-1]]
    assert reference[4:7] == ["-", "-", "-"]  # the reference: no int8, bytes or latency


def test_over_seeds_gives_the_mean_and_range_of_runs_with_more_than_one_seed():
    results = [run("cnn, light", "letters", s, a) for s, a in ((42, 0.9), (1, 0.8), (2, 1.0))]
    results.append(run("cnn", "letters", 42, 0.85))  # one seed: no row
    rows = candidates.over_seeds(results).splitlines()[2:]
    assert rows == ["| letters | cnn, light | 3 | 90.0% (80.0% to 100.0%) | 30.0 | 60.0 |"]


def test_tables_prints_a_result_file_and_unknown_candidates_are_refused(tmp_path, capsys):
    out = tmp_path / "candidates.json"
    out.write_text(json.dumps([run("cnn", "letters", 42, 0.85)]))
    assert candidates.main(["--tables", "--out", str(out)]) == 0
    assert "| letters | cnn | 42 | 85.00%" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        candidates.main(["--candidates", "resnet", "--out", str(out)])
    assert refused.value.code == 2
    assert "allowed: cnn; cnn, light" in capsys.readouterr().err
