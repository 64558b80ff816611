from hwnas.problem import Evaluation
from hwnas.rundir import HistoryWriter, read_history
from hwnas.spaces.nb201 import NB201Arch


def test_torn_last_line_is_dropped_and_rewritten(tmp_path, nb201):
    path = tmp_path / "history.csv"
    w = HistoryWriter(path, with_energy=False)
    archs = [NB201Arch((i % 5, 1, 2, 3, 4, 0)) for i in range(3)]
    for q, a in enumerate(archs, 1):
        w.append(q, Evaluation(a, 90.0 + q, 10.0 - q, 1.5 * q, None, True), None)
    w.close()
    text = path.read_text()
    path.write_text(text + "4,|nor_conv")  # a kill in the middle of a write
    assert [a for a, _ in read_history(path, nb201)] == archs
    w = HistoryWriter(path, with_energy=False, keep_rows=2)
    w.close()
    assert path.read_text() == "".join(text.splitlines(keepends=True)[:3])


def test_a_search_cleans_temp_files_of_a_killed_writer(tmp_path, nb201):
    import subprocess
    import sys

    from conftest import make_search_cfg

    from hwnas.io import temp_prefix
    from hwnas.search import prepare_run_dir

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a writer that is gone, as after kill -9
    orphan = tmp_path / (temp_prefix("summary.json", proc.pid) + "x1y2.tmp")
    orphan.write_text("{half")
    user = tmp_path / "notes.tmp"
    user.write_text("mine")
    prepare_run_dir(tmp_path, make_search_cfg(), nb201)
    assert not orphan.exists() and user.is_file() and (tmp_path / "config.json").is_file()


def test_config_json_is_the_full_search_config(tmp_path):
    from conftest import make_search_cfg

    from hwnas.rundir import config_record, read_config, write_config

    cfg = make_search_cfg()
    write_config(tmp_path, config_record(cfg))
    rec = read_config(tmp_path)
    assert rec["space"] == {"name": "nb201", "channels": 16, "cells_per_stage": 5}
    assert rec["dataset"]["name"] == "cifar10" and rec["device"]["kind"] == "benchmark"
    assert rec["data_dir"] is None and "resume" not in rec and "output" not in rec
    assert read_config(tmp_path / "nowhere") is None


def test_a_finished_run_of_another_config_is_never_overwritten(tmp_path):
    import pytest

    from conftest import make_search_cfg
    from hwnas.errors import ConfigError
    from hwnas.search import search

    run = tmp_path / "run"
    search(make_search_cfg(searcher="random", queries=8), run, progress=False, log=lambda *a: None)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match="finished search made with another config: searcher.batch_size"):
        search(make_search_cfg(searcher="random", queries=8, batch_size=2), run, progress=False, log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # the same config again simply re-runs it (same seed, same result)
    search(make_search_cfg(searcher="random", queries=8), run, progress=False, log=lambda *a: None)
    assert (run / "history.csv").read_bytes() == before["history.csv"]
