"""What a search prints is rounded for reading; summary.json keeps full precision."""
from __future__ import annotations

import re

from conftest import make_search_cfg
from hwnas.search import search


def test_printed_figures_are_rounded_and_summary_is_not(tmp_path):
    lines: list[str] = []
    summary = search(make_search_cfg(searcher="random", queries=30), tmp_path / "run", progress=False,
                     log=lines.append)
    line = next(x for x in lines if "best feasible accuracy" in x)
    assert re.fullmatch(r"30 queries, best feasible accuracy \d+\.\d\d, hv_ratio \d\.\d{3}, "
                        r"front_regret \d+\.\d{3}", line), line
    assert f"accuracy {summary['best_feasible_accuracy']:.2f}," in line
    assert f"hv_ratio {summary['hv_ratio']:.3f}," in line
    rows = [x for x in lines[lines.index(next(x for x in lines if x.strip().startswith("latency_ms"))) + 1:]]
    assert rows and all(re.match(r"\s+[0-9.e+-]+\s+\d+\.\d\d\s+\|", r) for r in rows), rows
