"""hwnas-search as users run it: a Hydra app in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, kill_search_when, run_app


def test_default_search_writes_the_run_dir_contract(tmp_path):
    out = tmp_path / "run"
    r = run_app(f"hydra.run.dir={out}", "output.progress=false")
    assert r.returncode == 0, r.stderr
    assert f"run dir: {out}" in r.stdout and "Pareto front" in r.stdout
    assert "Warning" not in r.stderr, r.stderr  # e.g. the sweep callback misfiring on a single run
    for name in ("history.csv", "pareto.csv", "summary.json", "pareto.png", "config.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["searcher"] == "lamoo" and summary["device"] == "raspi4" and summary["queries"] == 100
    assert summary["constraints"]["latency_ms"] == 20.0  # raspi4's default budget
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "query,arch,index,accuracy,latency_ms,feasible"
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_history_bytes_through_hydra(tmp_path):
    args = ["searcher=regularized_evolution", "device=pixel3", "dataset=cifar100",
            "constraints.latency_ms=8", "budget.queries=25", "seed=3", "output.plot=false", "output.progress=false"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_app(f"hydra.run.dir={a}", *args).returncode == 0
    assert run_app(f"hydra.run.dir={b}", *args).returncode == 0
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()


@pytest.mark.parametrize("arg, expected", [
    # (the list grows with every searcher; test_searchers checks its content)
    ("searcher=nope", "unknown searcher 'nope'; valid searchers: "),
    ("device=nope", "unknown device 'nope'; valid devices: 1080ti_1"),
    ("dataset=mnist", "unknown dataset 'mnist'; valid datasets: ImageNet16-120, cifar10, cifar100"),
    ("constraints.latency_ms=0.005", "the smallest latency is 0.01128 ms"),
    ("constraints.energy_mj=3", "has no energy figures"),
    ("data_dir=/nonexistent", "data directory /nonexistent does not exist"),
    ("device=csv", "device=csv needs device.path"),
    # bad searcher option values (tests/test_searchers.py checks each option at library level)
    ("searcher=ganas searcher.lr=-1", "searcher.lr must be > 0, got -1"),
    ("searcher=agnet searcher.tau=0", "searcher.tau must be > 0, got 0"),
])
def test_user_mistakes_get_one_clear_error(tmp_path, arg, expected):
    r = run_app(f"hydra.run.dir={tmp_path / 'x'}", *arg.split())
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expected in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_data_dir_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HWNAS_DATA_DIR"}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.search", f"hydra.run.dir={tmp_path}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "HWNAS_DATA_DIR" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("searcher", ["nsga2", "lanas"])
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, searcher):
    args = [f"searcher={searcher}", "budget.queries=60", "seed=5", "evaluator.delay_s=0.04",
            "output.progress=false", "output.plot=false"]
    ref = tmp_path / "ref"
    assert run_app(f"hydra.run.dir={ref}", *args).returncode == 0

    run = tmp_path / "run"
    hist = run / "history.csv"
    kill_search_when([f"hydra.run.dir={run}", *args],  # after the 15th row
                     lambda: hist.is_file() and len(hist.read_text().splitlines()) > 15)
    done = len(hist.read_text().splitlines()) - 1
    assert 15 <= done < 60, "the kill must land mid-search"
    assert not (run / "summary.json").exists()

    r = run_app(f"hydra.run.dir={run}", *args)  # without resume=true: refuses to lose the work
    assert r.returncode == 2 and "resume=true" in r.stderr
    r = run_app(f"hydra.run.dir={run}", *args, "resume=true")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert hist.read_bytes() == (ref / "history.csv").read_bytes()
    assert (run / "pareto.csv").read_bytes() == (ref / "pareto.csv").read_bytes()
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert {k: v for k, v in s1.items() if k != "wall_s"} == {k: v for k, v in s2.items() if k != "wall_s"}


def test_resume_refuses_a_changed_config(tmp_path):
    run = tmp_path / "run"
    assert run_app(f"hydra.run.dir={run}", "budget.queries=10", "output.plot=false").returncode == 0
    r = run_app(f"hydra.run.dir={run}", "budget.queries=10", "seed=9", "resume=true")
    assert r.returncode == 2 and "seed (0 then, 9 now)" in r.stderr


def run_in(cwd, *args, timeout=300):
    """The app run from another folder, without hydra.run.dir: outputs land under cwd."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.search", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_sweep_over_groups_and_ranges_ends_with_one_table(tmp_path):
    sweep = tmp_path / "sweep"
    r = run_app("-m", "searcher=random,nsga2", "seed=range(0,2)", "budget.queries=8", "output.plot=false",
                "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["job", "searcher", "device", "seed"]
    got = sorted((row.split(",")[1], row.split(",")[3]) for row in rows[1:])
    assert got == [("nsga2", "0"), ("nsga2", "1"), ("random", "0"), ("random", "1")]
    assert all(",ok," in row for row in rows[1:])
    assert "sweep of 4 runs" in r.stdout


def test_sweep_runs_its_jobs_in_parallel_through_the_joblib_launcher(tmp_path):
    # The jobs run in joblib's worker processes, where Hydra calls on_job_end: the table is still
    # made of this sweep's jobs.
    sweep = tmp_path / "sweep"
    r = run_app("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "searcher=random,nsga2", "seed=0,1",
                "budget.queries=8", "output.plot=false", "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr
    assert "Joblib.Parallel(n_jobs=2" in r.stdout + r.stderr
    rows = (sweep / "summary.csv").read_text().splitlines()[1:]
    got = sorted((row.split(",")[1], row.split(",")[3]) for row in rows)
    assert got == [("nsga2", "0"), ("nsga2", "1"), ("random", "0"), ("random", "1")]
    assert all(",ok," in row for row in rows) and "sweep of 4 runs" in r.stdout


def test_sweep_table_lists_this_sweeps_jobs_without_hydra_subdir(tmp_path):
    # hydra.output_subdir=null leaves no .hydra/ folder in a job dir; and a job folder left in a
    # reused sweep dir by an earlier sweep is not one of this sweep's runs.
    sweep = tmp_path / "sweep"
    stale = sweep / "7"
    (stale / ".hydra").mkdir(parents=True)
    (stale / "summary.json").write_text(json.dumps({"searcher": "nsga2", "device": "old", "seed": 9}))
    r = run_app("-m", "searcher=random", "seed=0,1", "budget.queries=5", "hydra.output_subdir=null",
                "output.plot=false", "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr
    assert "sweep of 2 runs" in r.stdout
    rows = (sweep / "summary.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:4] for row in rows] == [["0", "random", "raspi4", "0"], ["1", "random", "raspi4", "1"]]
    assert all(",ok," in row for row in rows) and not (sweep / "0" / ".hydra").exists()


def test_sweep_table_marks_an_unreadable_summary(tmp_path, capsys):
    from omegaconf import OmegaConf

    from hwnas.apps.sweep import SweepSummary

    callback = SweepSummary()
    callback.on_multirun_start(OmegaConf.create({}))
    for num, text in enumerate(['{"searcher": "random", "device": "raspi4", "seed": 0}', "{not json", "[1, 2]",
                                '{"device": "raspi4"}']):
        job = tmp_path / str(num)
        job.mkdir()
        (job / "summary.json").write_text(text)
        callback.on_job_end(OmegaConf.create({"hydra": {"job": {"num": num}, "runtime": {"output_dir": str(job)}}}),
                            job_return=None)
    with pytest.raises(SystemExit) as exc:
        callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert exc.value.code == 2
    out = capsys.readouterr().out
    assert "sweep of 4 runs" in out and "3 of 4 runs failed" in out and "Traceback" not in out
    rows = (tmp_path / "summary.csv").read_text().splitlines()[1:]
    assert [row.split(",")[-2] for row in rows] == ["ok"] + ["failed: unreadable summary.json"] * 3


@pytest.mark.parametrize("args", [["-m", "searcher=random,nope"], ["-m", "searcher=choice(random,nope)"],
                                  ["searcher=nope"]])
def test_sweep_forms_are_checked_value_by_value(tmp_path, args):
    r = run_in(tmp_path, *args)
    from hwnas.searchers import SEARCHER_MODULES

    valid = ", ".join(sorted(SEARCHER_MODULES))
    assert r.returncode == 2 and r.stderr.strip() == f"hwnas: error: unknown searcher 'nope'; valid searchers: {valid}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arg, expected", [
    ("sercher=random", "unknown key 'sercher'; did you mean 'searcher'?"),
    ("searcher=nsga2 searcher.pop_sise=3", "unknown key 'searcher.pop_sise' with searcher=nsga2; did you mean "
                                           "'searcher.pop_size'?"),
    ("constraints.latency_m=3", "unknown key 'constraints.latency_m'; did you mean 'constraints.latency_ms'?"),
])
def test_mistyped_key_is_one_line_with_the_nearest_key(tmp_path, arg, expected):
    r = run_in(tmp_path, *arg.split())
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"hwnas: error: {expected}"]


@pytest.mark.parametrize("arg, expected", [
    ("seed=-1", "seed must be an integer >= 0, got -1"),
    ("budget.queries=100000", "budget.queries=100000 but only 4576 architectures meet the constraints on device "
                              "'raspi4'; use budget.queries<=4576"),
    ("constraints.latency_quantile=1.5", "constraints.latency_quantile must be in (0, 1], got 1.5"),
])
def test_rejected_search_leaves_nothing_behind(tmp_path, arg, expected):
    r = run_in(tmp_path, arg)
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [], "a rejected run leaves no outputs/.../.hydra"


@pytest.mark.parametrize("run_dir", [".", "..", "mine"])
def test_a_rejected_run_in_a_users_folder_removes_only_what_hydra_wrote(tmp_path, run_dir):
    proj = tmp_path / "proj"
    (proj / "emptydir").mkdir(parents=True)
    (proj / "mine").mkdir()
    (proj / "mine" / "notes.log").write_text("")  # a user's empty log is not Hydra's
    r = run_in(proj, "seed=-1", f"hydra.run.dir={run_dir}")
    assert r.returncode == 2 and "seed must be an integer >= 0" in r.stderr and "Traceback" not in r.stderr
    assert (proj / "emptydir").is_dir() and (proj / "mine" / "notes.log").is_file()
    assert not (proj / run_dir / ".hydra").exists()


@pytest.mark.parametrize("how", ["searchpath", "config_dir"])
def test_configs_from_hydras_own_search_path_are_accepted(tmp_path, how):
    conf = tmp_path / "myconf"
    (conf / "device").mkdir(parents=True)
    raspi4 = (REPO / "hwnas" / "conf" / "device" / "raspi4.yaml").read_text()
    (conf / "device" / "mydev.yaml").write_text(raspi4.replace("name: raspi4", "name: mydev"))
    extra = [f"hydra.searchpath=[file://{conf}]"] if how == "searchpath" else ["-cd", str(conf)]
    r = run_in(tmp_path, *extra, "device=mydev", "searcher=random", "budget.queries=5", "output.plot=false",
               "output.progress=false")
    assert r.returncode == 0, r.stderr
    assert "nb201-cifar10-mydev" in r.stdout


def test_device_default_budget_quantile_and_none_name_the_run_dir(tmp_path):
    import numpy as np
    import pandas as pd

    common = ["device=pixel3", "budget.queries=5", "output.plot=false", "output.progress=false", "searcher=random"]
    r = run_in(tmp_path, *common)
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "outputs").glob("*/*")
    assert run.name.startswith("random-lat7.5-q5")  # pixel3's own default, not the Pi's 20 ms
    assert json.loads((run / "summary.json").read_text())["constraints"]["latency_ms"] == 7.5
    assert not list(run.glob("*.log"))  # no empty search.log

    r = run_in(tmp_path, *common, "constraints.latency_quantile=0.5")
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "outputs").glob("*/random-latq0.5-*")
    lat = pd.read_csv(Path(os.environ["HWNAS_DATA_DIR"]) / "nb201_latency_ms.csv")
    budget = json.loads((run / "summary.json").read_text())["constraints"]["latency_ms"]
    assert budget > 0 and budget == pytest.approx(np.quantile(lat["pixel3"].to_numpy(), 0.5), rel=0.05)

    r = run_in(tmp_path, *common, "constraints.latency_ms=inf")
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "outputs").glob("*/random-latinf-*")
    assert json.loads((run / "summary.json").read_text())["constraints"]["latency_ms"] is None


def test_this_machine_without_a_table_says_run_hwnas_profile(tmp_path, monkeypatch):
    from hwnas.config import this_machine_table

    # Neither a table this machine's user profiled nor a committed one (latency_tables/ holds an
    # Intel Xeon's CIFAR-10 table, which is this machine's on such a CPU): CIFAR-100 has none.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    r = run_in(tmp_path, "device=this_machine", "dataset=cifar100", "budget.queries=5")
    assert r.returncode == 2 and "hwnas-profile" in r.stderr and "Traceback" not in r.stderr
    assert f"{this_machine_table('nb201', 'cifar100')}.json" in r.stderr


@pytest.mark.parametrize("module", ["hwnas.apps.search", "hwnas.apps.profile", "hwnas.apps.export"])
def test_app_start_up_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize("module, first, example", [
    ("hwnas.apps.search", "hwnas-search: search a space", "hwnas-search -m searcher=lanas,nsga2"),
    ("hwnas.apps.profile", "hwnas-profile: measure", "hwnas-profile && hwnas-search device=this_machine"),
    ("hwnas.apps.export", "hwnas-export: the Pareto models", "hwnas-export run="),
])
def test_help_says_what_it_does_and_hides_internal_groups(tmp_path, module, first, example):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(first) and example in r.stdout
    assert "schema/" not in r.stdout and "hydra/" not in r.stdout
