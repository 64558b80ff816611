"""Device kind `profiled`: a latency table drives a search like any public table."""
import csv
import warnings

import numpy as np
import pytest
from conftest import make_search_cfg
from profile_fixture import synthetic_table

from hwnas.config import DeviceConfig
from hwnas.errors import ConfigError, DataError
from hwnas.latency.model import LatencyModel
from hwnas.latency.sources import make_latency_source


def test_profiled_source_prices_the_whole_space_in_index_order(nb201, data_dir, tmp_path):
    table = synthetic_table(nb201, tmp_path / "dev.json", calibration=(1.2, 0.1))
    src = make_latency_source(nb201, DeviceConfig(name="dev", kind="profiled", path=str(table.path)), "cifar10", data_dir)
    lat = src.all_latency()
    assert lat.shape == (15625,) and np.isfinite(lat).all()
    rng = np.random.default_rng(0)
    archs = [nb201.sample(rng) for _ in range(10)]
    expect = LatencyModel(table, nb201, "cifar10").predict(archs)
    np.testing.assert_allclose(src.latency(archs), expect)
    np.testing.assert_allclose(lat[nb201.indices(archs)], expect)
    assert src.describe()["kind"] == "profiled" and src.describe()["calibrated"]


def test_profiled_source_errors(nb201, data_dir, tmp_path):
    table = synthetic_table(nb201, tmp_path / "dev.json")
    cfg = DeviceConfig(name="dev", kind="profiled", path=str(table.path))
    with pytest.raises(ConfigError, match="profiled for dataset 'cifar10'.*dataset=cifar100"):
        make_latency_source(nb201, cfg, "cifar100", data_dir)
    (tmp_path / "bad.json").write_text('{"schema_version": 1, "entr')
    with pytest.raises(DataError, match="bad.json is not a valid hwnas latency table .*point device.path at a table "
                                        "written by hwnas-profile"):
        make_latency_source(nb201, DeviceConfig(name="b", kind="profiled", path=str(tmp_path / "bad.json")), "cifar10",
                            data_dir)
    missing = synthetic_table(nb201, tmp_path / "miss.json", drop="avg_pool_3x3-cin64-cout64-h8-w8-s1")
    with pytest.raises(DataError, match="avg_pool_3x3-cin64-cout64-h8-w8-s1.*hwnas-profile"):
        make_latency_source(nb201, DeviceConfig(name="m", kind="profiled", path=str(missing.path)), "cifar10", data_dir)


def test_search_on_a_profiled_table(nb201, tmp_path):
    from hwnas.search import search

    table = synthetic_table(nb201, tmp_path / "dev.json")
    cfg = make_search_cfg(searcher="nsga2", latency_ms=None, queries=30)
    cfg.device = DeviceConfig(name="dev", kind="profiled", path=str(table.path))
    summary = search(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    assert summary["device"] == "dev" and summary["queries"] == 30 and summary["hv_ratio"] is not None
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    model = LatencyModel(table, nb201, "cifar10")
    archs = [nb201.parse(r["arch"]) for r in rows]
    np.testing.assert_allclose([float(r["latency_ms"]) for r in rows], model.predict(archs), rtol=1e-6)


def test_committed_cpu_table_feeds_search_and_the_export_hook(nb201, data_dir):
    from hwnas.export.pipeline import profiled_device_latency
    from hwnas.latency.table import TABLE_DIR

    tables = sorted(TABLE_DIR.glob("cpu-ort-*.json"))
    if not tables:
        pytest.skip("no committed CPU latency table")
    name = tables[0].stem
    arch = nb201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    with warnings.catch_warnings():  # measured on another machine: a warning, never an error
        warnings.simplefilter("ignore")
        src = make_latency_source(nb201, DeviceConfig(name=name, kind="profiled"), "cifar10", data_dir)
    assert profiled_device_latency(name, arch) == pytest.approx(float(src.latency([arch])[0]))
    assert profiled_device_latency("raspi4", arch) is None  # a public table, not a profiled one



def test_a_table_from_another_machine_warns_but_works(nb201, data_dir, tmp_path):
    import json

    from hwnas.profiling.runners import RUNNERS, TimingSettings

    table = synthetic_table(nb201, tmp_path / "dev.json")
    here = RUNNERS.get("ort_cpu")(TimingSettings()).fingerprint()
    table.fingerprint.update(here, processor="Some Other CPU 9000")  # measured elsewhere
    table.save()
    assert json.loads(table.path.read_text())["fingerprint"]["processor"] == "Some Other CPU 9000"
    cfg = DeviceConfig(name="dev", kind="profiled", path=str(table.path))
    with pytest.warns(UserWarning, match="processor: 'Some Other CPU 9000'"):
        src = make_latency_source(nb201, cfg, "cifar10", data_dir)
    assert np.isfinite(src.all_latency()).all()


def test_export_hook_reads_a_table_given_by_path(nb201, tmp_path):
    from hwnas.export.pipeline import profiled_device_latency

    table = synthetic_table(nb201, tmp_path / "mine.json", calibration=(1.1, 0.2))
    arch = nb201.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    expect = float(LatencyModel(table, nb201, "cifar10").predict([arch])[0])
    assert profiled_device_latency("whatever-name", arch, str(table.path)) == pytest.approx(expect)
    assert profiled_device_latency("whatever-name", arch) is None


def test_export_hook_reads_tables_only_for_profiled_runs(nb201, tmp_path):
    # A run on a public device (kind benchmark, fitted, ...) never takes a latency table's figure,
    # even where latency_tables/<its name>.json or a path exists.
    from hwnas.export.pipeline import profiled_device_latency
    from hwnas.latency.table import TABLE_DIR

    table = synthetic_table(nb201, tmp_path / "mine.json")
    arch = nb201.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    assert profiled_device_latency("raspi4", arch, str(table.path), kind="profiled") is not None
    for kind in ("benchmark", "fitted", "csv", None):
        assert profiled_device_latency("raspi4", arch, str(table.path), kind=kind) is None
    for committed in sorted(TABLE_DIR.glob("*.json"))[:1]:
        assert profiled_device_latency(committed.stem, arch, kind="benchmark") is None
