import numpy as np
import pytest

from hwnas.config import DatasetConfig, DeviceConfig
from hwnas.data.nb201 import load_accuracy, load_latency, load_pi5
from hwnas.data.paths import resolve_data_dir
from hwnas.errors import DataError, HwnasError
from hwnas.latency.sources import make_latency_source


def test_values_the_readme_asserts(data_dir):
    acc = load_accuracy(data_dir)
    for col, best, idx in (("cifar10", 94.373, 6111), ("cifar100", 73.513, 9930), ("ImageNet16-120", 47.311, 857)):
        assert acc[col].max() == pytest.approx(best, abs=1e-3)
        assert int(acc[col].idxmax()) == idx
    lat = load_latency(data_dir)
    for col, val in (("raspi4", 10.481977), ("pixel3", 3.60585), ("eyeriss", 3.64562), ("fpga", 2.57296)):
        assert lat.loc[0, col] == pytest.approx(val)
    assert (lat["arch"] == acc["arch"]).all()
    pi5 = load_pi5(data_dir, "onnx", "cifar100")
    assert len(pi5) == 15625 and (pi5["index"].to_numpy() == np.arange(15625)).all()


def test_missing_data_dir_names_the_variable(monkeypatch):
    monkeypatch.delenv("HWNAS_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="HWNAS_DATA_DIR"):
        resolve_data_dir(None)


def test_missing_file_names_file_variable_and_readme(tmp_path, nb201):
    with pytest.raises(DataError) as exc:
        load_accuracy(tmp_path)
    msg = str(exc.value)
    assert "nb201_accuracy.csv" in msg and "HWNAS_DATA_DIR" in msg and "README" in msg


def test_malformed_file_reports_the_line(tmp_path, data_dir):
    orig = (data_dir / "nb201_accuracy.csv").read_text().splitlines(keepends=True)
    src = list(orig)
    parts = src[101].split(",")
    parts[2] = "oops"
    src[101] = ",".join(parts)
    (tmp_path / "nb201_accuracy.csv").write_text("".join(src))
    with pytest.raises(DataError, match=r"line 102: column 'cifar10' has 'oops'"):
        load_accuracy(tmp_path)
    (tmp_path / "nb201_accuracy.csv").write_text("".join(orig[:500]))
    with pytest.raises(DataError, match="truncated"):
        load_accuracy(tmp_path)


def test_malformed_arch_in_data_file_reports_the_line(tmp_path, data_dir):
    from hwnas.spaces import NB201Space

    src = (data_dir / "nb201_accuracy.csv").read_text().splitlines(keepends=True)
    src[7] = src[7].replace("~0|", "~9|", 1)
    (tmp_path / "nb201_accuracy.csv").write_text("".join(src))
    with pytest.raises(HwnasError, match="line 8"):
        NB201Space(tmp_path).from_index(0)


def _dev(**kw):
    return DeviceConfig(**kw)


def test_benchmark_and_pi5_sources(nb201, data_dir):
    src = make_latency_source(nb201, _dev(name="raspi4", kind="benchmark", column="raspi4"), "cifar10", data_dir)
    assert src.latency([nb201.from_index(0)])[0] == pytest.approx(10.481977)
    assert not src.has_energy
    with pytest.raises(HwnasError, match="valid devices: .*raspi4"):
        make_latency_source(nb201, _dev(name="x", kind="benchmark", column="nope"), "cifar10", data_dir)
    pi5 = make_latency_source(nb201, _dev(name="pi5", kind="pi5", framework="onnx"), "cifar100", data_dir)
    assert pi5.has_energy
    ref = load_pi5(data_dir, "onnx", "cifar100")
    a = nb201.from_index(123)
    assert pi5.latency([a])[0] == ref.loc[123, "lat_ms_median"]
    assert pi5.energy([a])[0] == ref.loc[123, "energy_mj"]
    with pytest.raises(HwnasError, match="unknown device kind 'nope'.*benchmark"):
        make_latency_source(nb201, _dev(name="x", kind="nope"), "cifar10", data_dir)


def test_generic_csv_device(tmp_path, nb201, data_dir):
    lat = load_latency(data_dir)
    by_index = tmp_path / "by_index.csv"
    lat[["index"]].assign(latency_ms=lat["pixel3"] * 2, energy_mj=lat["pixel3"]).to_csv(by_index, index=False)
    src = make_latency_source(nb201, _dev(name="mine", kind="csv", path=str(by_index)), "cifar10", data_dir)
    a = nb201.from_index(42)
    assert src.latency([a])[0] == pytest.approx(2 * lat.loc[42, "pixel3"]) and src.has_energy
    by_arch = tmp_path / "by_arch.csv"
    lat[["arch"]].assign(latency_ms=lat["fpga"]).iloc[::-1].to_csv(by_arch, index=False)
    src = make_latency_source(nb201, _dev(name="mine", kind="csv", path=str(by_arch)), "cifar10", data_dir)
    assert src.latency([a])[0] == pytest.approx(lat.loc[42, "fpga"]) and not src.has_energy
    partial = tmp_path / "partial.csv"
    lat[["index"]].assign(latency_ms=1.0).iloc[:100].to_csv(partial, index=False)
    with pytest.raises(DataError, match="no latency for 15525 of 15625"):
        make_latency_source(nb201, _dev(name="p", kind="csv", path=str(partial)), "cifar10", data_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("index,latency_ms\n0,1.0\n1,fast\n")
    with pytest.raises(DataError, match="line 3"):
        make_latency_source(nb201, _dev(name="b", kind="csv", path=str(bad)), "cifar10", data_dir)
    with pytest.raises(HwnasError, match="device.path"):
        make_latency_source(nb201, _dev(name="c", kind="csv"), "cifar10", data_dir)


def test_tabular_evaluator_counts_and_refuses_overspending(nb201, data_dir):
    from hwnas.config import EvaluatorConfig
    from hwnas.errors import BudgetExhausted
    from hwnas.evaluators import EVALUATORS

    ev = EVALUATORS.get("tabular")(nb201, EvaluatorConfig(name="tabular"), DatasetConfig(name="cifar10"), 2, data_dir)
    a, b, c = (nb201.from_index(i) for i in (6111, 1, 2))
    acc, new = ev.evaluate(a)
    assert acc == pytest.approx(94.373, abs=1e-3) and new and ev.used == 1
    assert ev.evaluate(a) == (acc, False) and ev.used == 1  # never charged twice
    ev.evaluate(b)
    assert ev.remaining == 0
    with pytest.raises(BudgetExhausted):
        ev.evaluate(c)
    assert ev.evaluate(b)[1] is False  # known ones still answer
    with pytest.raises(HwnasError, match="valid: cifar10"):
        EVALUATORS.get("tabular")(nb201, EvaluatorConfig(name="tabular"), DatasetConfig(name="mnist"), 2, data_dir)
    ninapro = EVALUATORS.get("tabular")(nb201, EvaluatorConfig(name="tabular"),
                                        DatasetConfig(name="ninapro", source="pi5", task="ninapro"), 2, data_dir)
    assert ninapro.all_accuracy().shape == (15625,)
