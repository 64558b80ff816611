"""The export folder: nothing created for a bad selection, a killed export leaves the previous
one intact, leftovers of killed writers are cleaned."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixture import ALL_OPS, CONV1, SKIPS, make_run, write_csv

from hwnas.errors import HwnasError
from hwnas.export import outdir
from hwnas.export.config import ExportConfig
from hwnas.export.pipeline import run_export
from hwnas.io import atomic_path, clean_stale_temps, sha256_file, temp_owner, temp_prefix

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run_dir(tmp_path, nb201, data_dir):
    return make_run(tmp_path / "run", nb201, data_dir=data_dir)


def cfg(run_dir, **kw) -> ExportConfig:
    base = dict(run=str(run_dir), latency_warmup=1, latency_repeats=2, progress=False, plot=False,
                verify_batches=[1])
    return ExportConfig(**{**base, **kw})


def dead_pid() -> int:
    """The pid of a process that has exited (reaped, so not alive)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def assert_intact(out: Path, manifest_text: str) -> None:
    """out/manifest.json is the given one and every file it lists has its recorded checksum."""
    assert (out / "manifest.json").read_text() == manifest_text
    for m in json.loads(manifest_text)["models"]:
        assert sha256_file(out / m["file"]) == m["sha256"], m["file"]


def hwnas_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if temp_owner(p.name) is not None)


# --- nothing is created for a selection that cannot be exported ------------------------------

def test_a_bad_index_creates_no_folder(run_dir):
    with pytest.raises(HwnasError, match="out of range"):
        run_export(cfg(run_dir, archs=[99999]))
    assert not (run_dir / "export").exists() and hwnas_leftovers(run_dir) == []


def test_a_bad_pareto_row_creates_no_folder(run_dir, tmp_path):
    rows = [{"query": 1, "arch": "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "index": "",
             "accuracy": 1.0, "latency_ms": 1.0, "feasible": "true"}]
    write_csv(run_dir / "pareto.csv", rows)
    with pytest.raises(HwnasError, match="pareto.csv, line 2: .*unknown op 'conv_9x9'"):
        run_export(cfg(run_dir, out=str(tmp_path / "deploy" / "x")))
    assert not (tmp_path / "deploy").exists() and not (run_dir / "export").exists()


# --- a killed re-export ---------------------------------------------------------------------

def test_an_interrupted_reexport_leaves_the_previous_export_intact(run_dir, monkeypatch):
    out = run_dir / "export"
    first = run_export(cfg(run_dir))
    assert first["counts"]["ok"] == 4
    (out / "notes.txt").write_text("mine")
    before = (out / "manifest.json").read_text()

    import hwnas.export.pipeline as pipeline

    real, done = pipeline.export_one, []

    def interrupted(*args, **kwargs):
        if len(done) == 3:
            raise KeyboardInterrupt  # Ctrl-C after 3 new models were written
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "export_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_export(cfg(run_dir, seed=7))  # other weights: other checksums, had they landed
    assert_intact(out, before)
    assert (out / "notes.txt").read_text() == "mine"
    assert hwnas_leftovers(run_dir) == [] and hwnas_leftovers(out) == []

    monkeypatch.setattr(pipeline, "export_one", real)
    again = run_export(cfg(run_dir, seed=7))
    assert_intact(out, (out / "manifest.json").read_text())
    assert [m["sha256"] for m in again["models"]] != [m["sha256"] for m in first["models"]]
    assert (out / "notes.txt").read_text() == "mine"  # a user's file survives the swap


KILLER = """
import os, signal, sys
import hwnas.export.pipeline as pipeline
from hwnas.export.config import ExportConfig
real, done = pipeline.export_one, []
def export_one(*args, **kwargs):
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all, as kill -9
    done.append(1)
    return real(*args, **kwargs)
pipeline.export_one = export_one
pipeline.run_export(ExportConfig(run=sys.argv[1], seed=7, latency_warmup=1, latency_repeats=2, progress=False,
                                 plot=False, verify_batches=[1]))
"""


def test_kill_9_during_a_reexport(run_dir):
    out = run_dir / "export"
    run_export(cfg(run_dir))
    before = (out / "manifest.json").read_text()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run_dir)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -9, proc.stderr
    assert_intact(out, before)
    left = hwnas_leftovers(run_dir)
    assert len(left) == 1 and left[0].endswith("-staging")  # the killed export's half
    assert len(list((run_dir / left[0]).glob("*.onnx"))) == 2

    m = run_export(cfg(run_dir, archs=[CONV1]))  # the next export cleans up and replaces
    assert hwnas_leftovers(run_dir) == []
    assert sorted(p.name for p in out.glob("*.onnx")) == [m["models"][0]["file"]]
    assert_intact(out, (out / "manifest.json").read_text())


def test_a_swap_killed_between_its_renames_is_undone(tmp_path):
    out = tmp_path / "export"
    pid = dead_pid()
    backup = tmp_path / (temp_prefix("export", pid) + "old")
    staging = tmp_path / (temp_prefix("export", pid) + "staging")
    backup.mkdir()
    (backup / "manifest.json").write_text("{}")
    staging.mkdir()
    (staging / "half.onnx").write_text("x")
    outdir.recover(out)  # out was moved aside, the new one never moved in: put the old back
    assert (out / "manifest.json").read_text() == "{}" and not backup.exists() and not staging.exists()

    backup.mkdir()  # the new one did move in; only the old one's removal was lost
    (backup / "manifest.json").write_text("old")
    outdir.recover(out)
    assert (out / "manifest.json").read_text() == "{}" and not backup.exists()


def test_a_live_exports_staging_is_left_alone(tmp_path):
    out = tmp_path / "export"
    live = tmp_path / (temp_prefix("export", os.getppid()) + "staging")
    live.mkdir()
    outdir.recover(out)
    assert live.is_dir()


def test_exporting_into_the_run_dir_itself_fills_it_in_place(run_dir):
    # The run dir cannot be swapped (it is the run); its own files are kept.
    first = run_export(cfg(run_dir, out=str(run_dir), archs=[SKIPS, ALL_OPS]))
    second = run_export(cfg(run_dir, out=str(run_dir), archs=[CONV1]))
    assert sorted(p.name for p in run_dir.glob("*.onnx")) == [second["models"][0]["file"]]
    assert first["models"][0]["file"] != second["models"][0]["file"]
    for name in ("history.csv", "pareto.csv", "summary.json", "config.json"):
        assert (run_dir / name).is_file()
    assert_intact(run_dir, (run_dir / "manifest.json").read_text())
    assert hwnas_leftovers(run_dir) == [] and hwnas_leftovers(run_dir.parent) == []


# --- temporary files of killed writers --------------------------------------------------------

def test_temp_names_carry_the_writers_pid(tmp_path):
    with atomic_path(tmp_path / "manifest.json") as tmp:
        assert tmp.name.startswith(".manifest.json.") and temp_owner(tmp.name) == os.getpid()
        tmp.write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_only_dead_writers_temp_files_are_cleaned(tmp_path):
    dead = tmp_path / (temp_prefix("report.md", dead_pid()) + "k2j4h1.tmp")
    live = tmp_path / (temp_prefix("report.md", os.getppid()) + "a8d7f6.tmp")
    mine = tmp_path / (temp_prefix("pareto.csv") + "zz.csv")
    user = tmp_path / ".report.md.swp"
    old_style = tmp_path / ".report.md.k2j4h1.tmp"  # made before temp names carried a pid
    for p in (dead, live, mine, user, old_style):
        p.write_text("x")
    assert clean_stale_temps(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, mine, user, old_style))


def test_an_export_cleans_dead_temp_files_in_its_folder(run_dir):
    out = run_dir / "export"
    run_export(cfg(run_dir, archs=[SKIPS]))
    orphan = out / (temp_prefix("manifest.json", dead_pid()) + "abc.tmp")
    orphan.write_text("{half")
    run_export(cfg(run_dir, archs=[SKIPS]))
    assert not orphan.exists() and hwnas_leftovers(out) == []


def test_ctrl_c_between_the_renames_puts_the_previous_export_back(tmp_path, monkeypatch):
    out = tmp_path / "export"
    out.mkdir()
    old = json.dumps({"schema_version": 1, "models": []})  # an earlier hwnas export's manifest
    (out / "manifest.json").write_text(old)
    staging = outdir.begin(out, in_place=False)
    (staging / "manifest.json").write_text("new")
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append(src)
        if len(calls) == 2:  # staging -> out
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(outdir.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        outdir.publish(staging, out, set(), in_place=False)
    monkeypatch.setattr(outdir.os, "rename", real)
    assert (out / "manifest.json").read_text() == old
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith("-old")] == []


@pytest.mark.parametrize("name", ["manifest.json", "report.md", "export_front.png"])
def test_a_users_namesake_files_are_refused_not_replaced(run_dir, tmp_path, name):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text("the user's own")
    with pytest.raises(HwnasError, match=f"holds {name}, which no hwnas export wrote"):
        run_export(cfg(run_dir, out=str(out), archs=[SKIPS], plot=False))
    assert (out / name).read_text() == "the user's own" and sorted(p.name for p in out.iterdir()) == [name]
