"""The benchmarks' docs writer, and the benchmarks' independence from the tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from benchmarks.docs_section import machine_line, replace_section, write_section
from hwnas.machine import cpu_id, cpu_isa, cpu_model

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if p.name not in ("__init__.py", "docs_section.py"))

PAGE = """# Page

Prose before, written by hand.

<!-- demo:start -->
| old | table |
|---|---|
| 1 | 2 |
<!-- demo:end -->

Prose after, also by hand.
"""


def test_replace_section_swaps_only_the_block():
    out = replace_section(PAGE, "demo", "| new | table |\n|---|---|\n| 3 | 4 |")
    assert "| 3 | 4 |" in out and "| 1 | 2 |" not in out
    assert out.startswith("# Page\n\nProse before, written by hand.\n\n<!-- demo:start -->\n| new |")
    assert out.endswith("<!-- demo:end -->\n\nProse after, also by hand.\n")
    # a second run with the same body changes nothing
    assert replace_section(out, "demo", "| new | table |\n|---|---|\n| 3 | 4 |") == out


def test_a_new_section_is_appended_and_others_are_kept():
    out = replace_section(PAGE, "other", "body")
    assert out.endswith("Prose after, also by hand.\n\n<!-- other:start -->\nbody\n<!-- other:end -->\n")
    assert "| 1 | 2 |" in out
    # a name that is a prefix of another section's name is a different section
    out2 = replace_section(out, "demo:x", "x")
    assert "| 1 | 2 |" in out2 and "<!-- demo:x:start -->\nx\n<!-- demo:x:end -->" in out2


@pytest.mark.parametrize("broken", [
    PAGE.replace("<!-- demo:end -->", ""),  # end marker lost
    PAGE.replace("<!-- demo:start -->", "<!-- demo:end -->", 1).replace("<!-- demo:end -->\n\nProse", "<!-- demo:start -->\n\nProse"),
    PAGE + "\n<!-- demo:start -->\n<!-- demo:end -->\n",  # duplicated
])
def test_broken_markers_are_refused_not_guessed(broken):
    with pytest.raises(ValueError, match="demo"):
        replace_section(broken, "demo", "new")


def test_body_holding_markers_is_refused():
    with pytest.raises(ValueError, match="markers"):
        replace_section(PAGE, "demo", "x <!-- demo:end --> y")


def test_write_section_rewrites_the_page_with_the_machine_and_leaves_no_temp_file(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    write_section(page, "demo", "| a |\n|---|\n| 5 |", note="2 jobs")
    text = page.read_text()
    block = text.split("<!-- demo:start -->")[1].split("<!-- demo:end -->")[0]
    assert "| 5 |" in block and "| 1 | 2 |" not in text
    line = block.strip().splitlines()[-1]
    assert line == machine_line("2 jobs")
    assert cpu_model() in line and f"{os.cpu_count()} cores" in line and date.today().isoformat() in line
    assert all(x in line for x in (cpu_id(), cpu_isa()) if x)
    assert line.endswith("; 2 jobs.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.md"]


def test_write_section_refuses_a_missing_page(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such docs page"):
        write_section(tmp_path / "absent.md", "demo", "x")


# section name prefix -> the script that writes it
WRITERS = {"search_quality:": "search_quality", "seed_claim_": "seed_claims", "seed_claims_gen": "seed_claims_gen",
           "surrogate_fidelity": "surrogate_fidelity", "profile_fidelity": "profile_fidelity",
           "calibration_cv": "calibration_cv", "public_device_fit:": "public_device_fit",
           "proxy_fidelity": "proxy_fidelity", "user_story": "user_story",
           "parallel_": "parallel_eval", "fewshot_device:": "fewshot_device", "dash:": "dash",
           "task_transfer:": "task_transfer", "latency_settings:": "latency_settings",
           "clock_repeatability": "clock_repeatability", "calibration_features:": "calibration_features",
           "validation_size:": "validation_size", "front_fidelity:": "front_fidelity"}
# Older blocks of searchers.md that no script writes any more (seed_claims.py now writes
# search_quality.md); kept until that page replaces them with a link.
HAND_KEPT = {("searchers.md", "search_quality_lanas"), ("searchers.md", "seed_claim_lanas")}


def test_every_marker_block_in_docs_has_a_script_that_writes_that_page():
    blocks = 0
    for page in sorted((REPO / "docs").glob("*.md")):
        for name in re.findall(r"(?m)^<!-- ([\w:.,-]+):start -->$", page.read_text()):
            if (page.name, name) in HAND_KEPT:
                continue
            writer = [w for prefix, w in WRITERS.items() if name.startswith(prefix)]
            assert writer, f"{page.name}: no benchmark writes section {name}"
            src = (REPO / "benchmarks" / f"{writer[-1]}.py").read_text()
            assert f"'{page.name}'" in src or f'"{page.name}"' in src, (page.name, name, writer)
            blocks += 1
    assert blocks >= 8


def test_benchmarks_import_the_library_not_the_tests():
    for path in SCRIPTS + [REPO / "benchmarks" / "docs_section.py"]:
        src = path.read_text()
        assert "sys.path" not in src.replace("sys.path[0]", ""), f"{path.name} patches sys.path"
        assert "conftest" not in src, f"{path.name} imports the tests' conftest"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_each_benchmark_script_answers_help(script):
    # As a script (its folder is sys.path[0], the repo root is not) and as a module.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for cmd, cwd in (([sys.executable, str(script), "--help"], script.parent),
                     ([sys.executable, "-m", f"benchmarks.{script.stem}", "--help"], REPO)):
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "usage:" in r.stdout and "--no-docs" in r.stdout
