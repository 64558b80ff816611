"""benchmarks/front_fidelity.py: the table scored on the networks searches return."""
import hashlib

import numpy as np
import pytest

from benchmarks.front_fidelity import front_archs, main, report, scores, time_with_table_clock
from hwnas.latency.table import TABLE_DIR, LatencyTable
from hwnas.spaces import NB201Space

COMMITTED = TABLE_DIR / "cpu-ort-intel-xeon-processor-t1-b1.json"
A = "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|"
B = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_front_archs_are_the_union_in_first_seen_order(tmp_path):
    one, two = tmp_path / "a.csv", tmp_path / "b.csv"
    one.write_text(f"latency_ms,accuracy,arch\n0.3,90,{A}\n0.2,80,{B}\n")
    two.write_text(f"latency_ms,accuracy,arch\n0.2,80,{B}\n")
    assert front_archs([one, two]) == [A, B]


def test_scores_give_the_signed_error_and_how_far_two_timings_are_apart():
    truth = np.array([1.0, 2.0, 4.0, 8.0])
    s = scores(1.1 * truth, truth, first=truth, second=np.array([1.0, 2.0, 4.2, 8.0]))
    assert s["bias_pct"] == pytest.approx(10.0) and s["within_5pct"] == 0.0
    assert s["retime_apart_pct"] == pytest.approx(0.0) and s["retime_within_10pct"] == 1.0
    assert s["retime_kendall_tau"] == pytest.approx(1.0)
    assert "retime_apart_pct" not in scores(truth, truth)  # one timing: no noise figures


def test_report_rows_and_cells_whose_pipes_are_escaped():
    table = LatencyTable.load(COMMITTED)
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, 12)
    pred = truth * (1 + rng.normal(0, 0.05, 12))
    archs = [A] * 12
    text = report(table, archs, pred, truth, truth * 1.01, np.ones((12, 3)), 4, ["lamoo"], [0, 1], 0.3, 100)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| the table's own validation") and rows[2].startswith("| **fronts of 4 searches** | 12 |")
    assert sum(r.startswith(("| fastest", "| middle", "| slowest")) for r in rows) == 3
    worst = [r for r in rows if r.startswith("| `")]
    assert len(worst) == 5 and all(r.count("|") - r.count("\\|") == 6 for r in worst)  # five cells each


def test_fronts_are_timed_in_the_tables_units_and_the_table_is_left_alone():
    space = NB201Space()
    before = hashlib.sha256(COMMITTED.read_bytes()).hexdigest()
    first, second = time_with_table_clock(COMMITTED, space, [A, B], progress=False)
    assert first.shape == second.shape == (2,)
    assert np.all(np.isfinite(first)) and np.all(first > 0) and np.all(second > 0)
    assert first[0] > first[1] and second[0] > second[1]  # two 1x1 convolutions per cell cost more than skips
    assert hashlib.sha256(COMMITTED.read_bytes()).hexdigest() == before


def test_a_missing_table_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--table", str(tmp_path / "nope.json"), "--no-docs", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("front_fidelity: latency table") and "does not exist" in err and "Traceback" not in err
