"""device=fewshot and hwnas-meta: exclusion of the target, determinism, the cache, bad input.

Meta-training runs with tiny settings (a few steps of a small MLP): these tests check what the
tool does, docs/fewshot.md measures how well it predicts.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.config import DeviceConfig, MetaConfig
from hwnas.latency.fewshot import excluded_devices, make_fewshot, meta_model, reference_set

REPO = Path(__file__).resolve().parents[1]
TINY = dict(hidden=8, layers=1, steps=3, tasks_per_step=1, max_extra=4, query_size=16, inner_steps=2)


def tiny(**kw) -> MetaConfig:
    return MetaConfig(**{**TINY, **kw})


def measured_csv(path: Path, data_dir, device: str, nb201, drop: int = 0, extra: int = 5) -> Path:
    """The reference architectures (minus the last `drop`) + `extra` others, with `device`'s latencies."""
    from hwnas.data.nb201 import load_latency

    y = load_latency(data_dir)[device].to_numpy(float)
    idx = [i for i, _ in reference_set(nb201)][: 10 - drop] + list(range(100, 100 + extra))
    pd.DataFrame({"arch": [str(nb201.from_index(i)) for i in idx], "latency_ms": y[idx]}).to_csv(path, index=False)
    return path


def hwnas_meta(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.meta", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_target_is_never_a_source_and_each_exclusion_has_its_own_model(data_dir, nb201, tmp_path):
    state, path, built = meta_model(data_dir, tiny(), ["pixel3"])
    assert built and "pixel3" not in state["sources"] and state["excluded"] == ["pixel3"]
    assert len(state["sources"]) == 18
    other, other_path, _ = meta_model(data_dir, tiny(), ["raspi4"])
    assert other_path != path and "raspi4" not in other["sources"] and "pixel3" in other["sources"]
    # device=fewshot named like a benchmark column excludes that column by itself, and says so
    cfg = DeviceConfig(name="pixel3", kind="fewshot", path=str(measured_csv(tmp_path / "m.csv", data_dir, "pixel3", nb201)),
                       meta=tiny())
    src = make_fewshot(nb201, cfg, "cifar10", data_dir)
    meta = src.describe()["meta"]
    assert "pixel3" not in meta["sources"] and meta["excluded"] == ["pixel3"] and meta["cache"] == str(path)
    # an exclusion that names no benchmark device would exclude nothing: refused
    from hwnas.errors import ConfigError

    with pytest.raises(ConfigError, match="pixel_3"):
        excluded_devices(data_dir, "my_board", ["pixel_3"])


def test_same_seed_same_predictions_other_seed_other_model(data_dir, nb201, tmp_path, monkeypatch):
    csv = measured_csv(tmp_path / "m.csv", data_dir, "raspi4", nb201)
    runs = []
    for home, seed in (("a", 0), ("b", 0), ("c", 1)):  # a fresh cache each: every model is trained
        monkeypatch.setenv("HWNAS_HOME", str(tmp_path / home))
        src = make_fewshot(nb201, DeviceConfig(name="raspi4", kind="fewshot", path=str(csv), meta=tiny(seed=seed)),
                           "cifar10", data_dir)
        runs.append(src.all_latency())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    # measured architectures keep their measured values; the rest is predicted, positive
    df = pd.read_csv(csv)
    idx = nb201.indices([nb201.parse(s) for s in df["arch"]])
    np.testing.assert_array_equal(runs[0][idx], df["latency_ms"].to_numpy())
    assert np.all(runs[0] > 0) and len(np.unique(runs[0])) > 1000


def test_cache_is_reused_and_rebuilt_when_settings_or_data_change(data_dir, tmp_path):
    _, path, built = meta_model(data_dir, tiny(), ["fpga"])
    assert built and path.is_file()
    _, again, built = meta_model(data_dir, tiny(), ["fpga"])
    assert again == path and not built
    _, p_steps, built = meta_model(data_dir, tiny(steps=4), ["fpga"])
    assert built and p_steps != path
    # the same data with one latency changed is another data set: another model
    copy = tmp_path / "data"
    copy.mkdir()
    for f in ("nb201_accuracy.csv",):
        (copy / f).symlink_to(Path(data_dir) / f)
    lat = pd.read_csv(Path(data_dir) / "nb201_latency_ms.csv")
    lat.loc[5, "pixel3"] *= 1.5
    lat.to_csv(copy / "nb201_latency_ms.csv", index=False)
    _, p_data, built = meta_model(copy, tiny(), ["fpga"])
    assert built and p_data != path


def test_an_unreadable_cache_file_is_one_warning_and_a_rebuild(data_dir):
    state, path, _ = meta_model(data_dir, tiny(), ["eyeriss"])
    path.write_bytes(b"not a torch file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again, same, built = meta_model(data_dir, tiny(), ["eyeriss"])
    msgs = [str(w.message) for w in caught if "meta-trained model" in str(w.message)]
    assert len(msgs) == 1 and str(path) in msgs[0]
    assert built and same == path
    for k, v in state["params"].items():  # same key, same seed: the same model again
        assert np.array_equal(v.numpy(), again["params"][k].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert meta_model(data_dir, tiny(), ["eyeriss"])[2] is False  # now read, silently


def test_reference_command_and_table_command_make_a_searchable_device(data_dir, nb201, tmp_path):
    r = hwnas_meta("reference", "--out", str(tmp_path / "refs.csv"))
    assert r.returncode == 0, r.stderr
    refs = pd.read_csv(tmp_path / "refs.csv")
    assert list(refs.columns) == ["index", "arch", "latency_ms"] and len(refs) == 10
    assert [int(i) for i in refs["index"]] == [i for i, _ in reference_set(nb201)]
    assert all(nb201.parse(s).is_connected() for s in refs["arch"])
    from hwnas.data.nb201 import load_latency

    refs["latency_ms"] = load_latency(data_dir)["gold_6226"].to_numpy()[refs["index"]]
    refs.to_csv(tmp_path / "board.csv", index=False)
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    r = hwnas_meta("table", "--measured", str(tmp_path / "board.csv"), "--name", "my_board",
                   "--exclude", "gold_6226", *sets)
    assert r.returncode == 0, r.stderr
    assert "excluded: gold_6226" in r.stdout
    home = Path(os.environ["HWNAS_HOME"])
    table = pd.read_csv(home / "latency_tables" / "my_board.csv")
    assert len(table) == 15625 and table["measured"].sum() == 10
    conf = (home / "conf" / "device" / "my_board.yaml").read_text()
    assert "kind: csv" in conf and "gold_6226" not in conf.split("meta-trained on:")[1].split(")")[0]
    # the search's device=csv reads the table back: the whole space, measured values as measured
    from hwnas.latency.sources import make_latency_source

    src = make_latency_source(nb201, DeviceConfig(name="my_board", kind="csv", path=str(home / "latency_tables" / "my_board.csv")),
                              "cifar10", data_dir)
    np.testing.assert_allclose(src.all_latency()[refs["index"]], refs["latency_ms"])


@pytest.mark.parametrize("case, expect", [
    ("missing", "3 of the 10 reference architectures are not measured"),
    ("unknown_arch", "line 2"),
    ("zero_latency", "latency_ms must be a positive number"),
])
def test_bad_measurements_are_one_clear_error_and_exit_2(data_dir, nb201, tmp_path, case, expect):
    csv = measured_csv(tmp_path / "m.csv", data_dir, "pixel3", nb201, drop=3 if case == "missing" else 0)
    if case != "missing":
        df = pd.read_csv(csv)
        if case == "unknown_arch":
            df.loc[0, "arch"] = "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"
        else:
            df.loc[4, "latency_ms"] = 0.0
        df.to_csv(csv, index=False)
    r = hwnas_meta("table", "--measured", str(csv), "--name", "bad_board", *[a for k, v in TINY.items()
                                                                             for a in ("--set", f"{k}={v}")])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in r.stderr
    if case == "missing":  # names which: the three dropped references, by index and arch
        for i, s in reference_set(nb201)[7:]:
            assert f"index {i} {s}" in lines[0]
        assert "hwnas-meta reference" in lines[0]
    assert not (Path(os.environ["HWNAS_HOME"]) / "latency_tables" / "bad_board.csv").exists()


def test_unknown_setting_is_one_clear_error():
    r = hwnas_meta("train", "--set", "stepz=3")
    assert r.returncode == 2 and "stepz" in r.stderr and "Traceback" not in r.stderr


def test_a_search_on_a_fewshot_device_records_what_its_predictor_learnt_from(data_dir, nb201, tmp_path):
    from hwnas.search import search
    from hwnas.search_config import make_search_cfg

    csv = measured_csv(tmp_path / "m.csv", data_dir, "pixel3", nb201)
    cfg = make_search_cfg("random", queries=10, latency_ms=None)
    cfg.device = DeviceConfig(name="pixel3", kind="fewshot", path=str(csv), meta=tiny(),
                              default_latency_quantile=0.3)
    summary = search(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    meta = summary["device_meta"]
    assert meta["excluded"] == ["pixel3"] and "pixel3" not in meta["sources"] and len(meta["sources"]) == 18
