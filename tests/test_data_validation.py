"""Impossible benchmark values are refused with one line naming the file, column and row
(items: data readers validate; latency sources refuse non-positive latencies)."""
import numpy as np
import pytest

from hwnas.config import DeviceConfig
from hwnas.data.nb201 import load_accuracy, load_latency, load_pi5
from hwnas.errors import DataError
from hwnas.latency.base import IndexedSource
from hwnas.latency.sources import make_latency_source


def _copy_with(data_dir, tmp_path, name, line, col, value):
    """The public file `name` with column `col` of 1-based file line `line` replaced by `value`."""
    src = (data_dir / name).read_text().splitlines(keepends=True)
    head = src[0].rstrip("\n").split(",")
    parts = src[line - 1].rstrip("\n").split(",")
    # arch strings hold no commas, so columns split cleanly
    parts[head.index(col)] = value
    src[line - 1] = ",".join(parts) + "\n"
    (tmp_path / name).write_text("".join(src))


@pytest.mark.parametrize("value", ["inf", "-5", "100.5", "nan"])
def test_impossible_accuracy_is_refused(data_dir, tmp_path, value):
    _copy_with(data_dir, tmp_path, "nb201_accuracy.csv", 11, "cifar100", value)
    with pytest.raises(DataError, match=r"nb201_accuracy.csv, line 11: column 'cifar100'.*impossible|line 11.*not a number"):
        load_accuracy(tmp_path)


@pytest.mark.parametrize("value", ["-3", "0", "inf"])
def test_impossible_latency_is_refused(data_dir, tmp_path, value):
    _copy_with(data_dir, tmp_path, "nb201_latency_ms.csv", 5, "pixel3", value)
    with pytest.raises(DataError, match=r"nb201_latency_ms.csv, line 5: column 'pixel3'.*impossible"):
        load_latency(tmp_path)


def test_empty_latency_csv_is_one_line(tmp_path):
    (tmp_path / "nb201_latency_ms.csv").write_text("")
    with pytest.raises(DataError, match="nb201_latency_ms.csv: cannot be read as CSV") as exc:
        load_latency(tmp_path)
    assert "\n" not in str(exc.value)


def test_pi5_checks_and_darcy_is_a_relative_error(data_dir, tmp_path):
    # darcy's public accuracy (a relative error) has 3 negative values: they must still load
    darcy = load_pi5(data_dir, "onnx", "darcy")
    assert (darcy["accuracy"] < 0).any()
    lines = (data_dir / "nb360_pi5.csv").read_text().splitlines(keepends=True)
    head = lines[0].rstrip("\n").split(",")
    for col, value in (("energy_mj", "-1"), ("lat_ms_median", "-3"), ("accuracy", "inf")):
        row = 1 + next(i for i, ln in enumerate(lines[1:]) if ",cifar100," in ln)
        parts = lines[row].rstrip("\n").split(",")
        parts[head.index(col)] = value
        (tmp_path / "nb360_pi5.csv").write_text("".join(lines[:row] + [",".join(parts) + "\n"] + lines[row + 1:]))
        with pytest.raises(DataError, match=rf"nb360_pi5.csv, line {row + 1}: column '{col}'"):
            load_pi5(tmp_path, "onnx", "cifar100")


def test_sources_refuse_non_positive_latency(nb201, data_dir, tmp_path):
    lat = np.ones(15625)
    lat[7] = 0.0
    with pytest.raises(DataError, match=r"device d from here: latency of architecture index 7 \(\|.*is 0 ms"):
        IndexedSource(nb201, "d", lat, origin="here")
    lat[7] = np.nan
    with pytest.raises(DataError, match="index 7"):
        IndexedSource(nb201, "d", lat)
    # near-zero (tiny positive) latencies of disconnected cells stay allowed
    assert IndexedSource(nb201, "d", np.full(15625, 1e-4)).all_latency().min() > 0
    src = make_latency_source(nb201, DeviceConfig(name="raspi4", kind="benchmark", column="raspi4"), "cifar10", data_dir)
    assert src.all_latency().min() > 0


def test_csv_source_names_file_and_line_for_negative_latency(nb201, data_dir, tmp_path):
    lat = load_latency(data_dir)
    bad = tmp_path / "neg.csv"
    lat[["index"]].assign(latency_ms=lat["pixel3"].where(lat["index"] != 9, -3.0)).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"neg.csv, line 11: latency_ms must be a positive number"):
        make_latency_source(nb201, DeviceConfig(name="n", kind="csv", path=str(bad)), "cifar10", data_dir)
