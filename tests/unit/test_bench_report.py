"""bench/report.py: the goals `make bench` judges a run by (issue 29's, then the guards), the
ratios computed from a run's figures, and the line that says which goals a run met."""

from __future__ import annotations

import math

from bench import report

ISSUE_29 = {  # issue 29, "Goals (ratios, one run, side by side)", and the guards it keeps
    "cold_start_vs_lean_floor": ("<=", 1.2),
    "warm_p50_vs_floor": ("<=", 1.3),
    "warm_p50_vs_floor_batch32": ("<=", 1.0),
    "warm_p50_vs_floor_batch256": ("<=", 1.0),
    "peak_rss_vs_lean_floor_cold": ("<=", 1.15),
    "peak_rss_vs_lean_floor_largest_batch": ("<=", 1.15),
    "large_model_load_vs_lean_floor": ("<=", 1.05),
    "cold_start_vs_seed": (">=", 12),
    "int8_bytes_vs_float32": ("<=", 0.30),
    "int8_accuracy_drop_points": ("<=", 0.5),
    "package_unzipped_mb": ("<=", 100),
    "cold_start_signed_vs_ours": ("<=", 1.15),
}


def row(p50_ms: float) -> dict:
    return {"p50_ms": p50_ms}


def run_figures() -> dict:
    """A run's figures, as results.json holds them (the parts the ratios read)."""
    return {
        "cold_start": {
            "variants": {
                "ours": row(110.0),
                "lean_floor": row(100.0),
                "seed": row(2200.0),
                "ours_signed": row(121.0),
            }
        },
        "warm": {
            "batches": {
                "1": {"ours": row(0.14), "floor": row(0.1), "seed_predict": row(40.0)},
                "32": {"ours": row(0.9), "floor": row(1.0)},
                "256": {"ours": row(7.5), "floor": row(7.0)},
            }
        },
        "memory": {
            "cold": {"ours": {"p50": 66.0}, "lean_floor": {"p50": 60.0}},
            "largest_batch": {"ours": {"p50": 75.0}, "lean_floor": {"p50": 60.0}},
        },
        "model_scale": {
            "1": {"ours_vs_lean_floor": 2.0, "ours_vs_plain_download": 3.0},
            "100": {"ours_vs_lean_floor": 1.04, "ours_vs_plain_download": 1.2},
        },
        "prepared": {
            "keras_float_accuracy": 0.95,
            "modes": {"int8": {"accuracy": 0.948}},
            "mlp_modes": {"none": {"bytes": 400_000}, "int8": {"bytes": 110_000}},
        },
        "package": {"unzipped_mib": 94.0},
    }


def test_the_goal_table_is_issue_29s_goals_and_guards_exactly():
    assert {key: (op, goal) for key, (op, goal, _) in report.GOALS.items()} == ISSUE_29


def test_ratios_come_from_the_runs_figures_side_by_side():
    ratios = report.ratios(run_figures())
    assert list(ratios) == list(report.GOALS)
    assert ratios["cold_start_vs_lean_floor"] == 1.1
    assert ratios["warm_p50_vs_floor"] == 1.4
    assert ratios["warm_p50_vs_floor_batch32"] == 0.9
    assert ratios["warm_p50_vs_floor_batch256"] == 1.071
    assert ratios["peak_rss_vs_lean_floor_cold"] == 1.1
    assert ratios["peak_rss_vs_lean_floor_largest_batch"] == 1.25
    assert ratios["large_model_load_vs_lean_floor"] == 1.04  # the largest model's
    assert ratios["cold_start_vs_seed"] == 20.0
    assert ratios["int8_accuracy_drop_points"] == 0.2
    assert ratios["cold_start_signed_vs_ours"] == 1.1
    context = report.context(run_figures())  # issue 12's goals stay beside them
    assert context["large_model_load_vs_download"] == 1.2
    assert context["warm_p50_vs_seed_predict"] == round(40.0 / 0.14, 3)


def test_the_run_says_which_goals_it_met_and_which_not():
    ratios = report.ratios(run_figures())
    line = report.goals_summary(ratios)
    assert line == (
        "Goals met: 9 of 12; not met: warm_p50_vs_floor, warm_p50_vs_floor_batch256, "
        "peak_rss_vs_lean_floor_largest_batch."
    )
    ratios["package_unzipped_mb"] = math.nan  # a section that did not run: not a pass
    assert report.goals_summary(ratios).endswith("; not measured: package_unzipped_mb.")
    assert report.meets("cold_start_vs_seed", 12) and not report.meets("cold_start_vs_seed", 11.9)
